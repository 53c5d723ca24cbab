package popdb

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// Generator derives citizen records from a seed and a record index, so any
// number of citizens can be served without storing them.
type Generator struct {
	seed    uint64
	records int64
	t       tables
}

// NewGenerator returns a generator of records [0, records) for seed.
func NewGenerator(seed uint64, records int64) (*Generator, error) {
	if records < 1 || records > MaxRecords {
		return nil, fmt.Errorf("records must be in 1..%d, got %d", MaxRecords, records)
	}
	return &Generator{seed: seed, records: records, t: newTables()}, nil
}

// Records is how many citizens the generator serves.
func (g *Generator) Records() int64 { return g.records }

// Lookup returns the record named by a national ID, or false when the ID is
// malformed, outside the layout, or beyond the generator's record count.
func (g *Generator) Lookup(id string) (Citizen, bool) {
	i, err := RecordIndex(id)
	if err != nil || i >= g.records {
		return Citizen{}, false
	}
	return g.Record(i), true
}

// rng is splitmix64: tiny, fast and good enough for synthetic data.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

func (r *rng) pick(s []string) string { return s[r.intn(len(s))] }

func (r *rng) digits(n int) string {
	var b strings.Builder
	b.Grow(n)
	for range n {
		b.WriteByte(byte('0' + r.intn(10)))
	}
	return b.String()
}

// Record returns record index, which must be below Records().
func (g *Generator) Record(index int64) Citizen {
	id, _ := NationalID(index)
	p := decodeParts(index)
	r := &rng{s: g.seed ^ uint64(index)*0xd1b54a32d192ed03}
	t := &g.t

	c := Citizen{NationalID: id, Nationality: "Việt Nam"}
	c.FullName = g.name(r, p.female)
	c.Gender = "male"
	if p.female {
		c.Gender = "female"
	}
	month, day := 1+r.intn(12), 1+r.intn(28)
	c.DateOfBirth = fmt.Sprintf("%04d-%02d-%02d", p.year, month, day)
	if r.intn(10) < 8 {
		c.Ethnicity = t.ethnicGroups[0]
	} else {
		c.Ethnicity = r.pick(t.ethnicGroups)
	}
	c.Religion = r.pick(t.religions)
	c.PermanentAddress = g.address(r, p.province)
	if r.intn(4) == 0 {
		c.TemporaryAddress = g.address(r, r.intn(len(t.provinces)))
	} else {
		c.TemporaryAddress = c.PermanentAddress
	}
	c.PlaceOfOrigin = t.provinces[p.province]

	fatherYear := max(p.year-20-r.intn(15), firstBirthYear)
	motherYear := max(p.year-18-r.intn(15), firstBirthYear)
	familyName := strings.SplitN(c.FullName, " ", 2)[0]
	c.Father = Person{
		FullName:   familyName + " " + r.pick(t.maleMiddles) + " " + r.pick(t.maleGivens),
		NationalID: formatID(idParts{province: p.province, year: fatherYear, sequence: r.intn(sequences)}),
	}
	c.Mother = Person{
		FullName:   g.name(r, true),
		NationalID: formatID(idParts{province: p.province, female: true, year: motherYear, sequence: r.intn(sequences)}),
	}

	age := 2026 - p.year
	c.MaritalStatus = "single"
	if age >= 20 && r.intn(10) < 7 {
		c.MaritalStatus = []string{"married", "married", "married", "divorced", "widowed"}[r.intn(5)]
	}
	if c.MaritalStatus == "married" {
		spouseYear := min(max(p.year-3+r.intn(7), firstBirthYear), firstBirthYear+birthYears-1)
		c.Spouse = Person{
			FullName:   g.name(r, !p.female),
			NationalID: formatID(idParts{province: r.intn(len(t.provinces)), female: !p.female, year: spouseYear, sequence: r.intn(sequences)}),
		}
	}

	c.Household = Household{HouseholdID: "HK" + r.digits(10), HeadNationalID: id, RelationToHead: "head"}
	if age < 25 {
		c.Household.HeadNationalID = c.Father.NationalID
		c.Household.RelationToHead = "child"
	} else if c.MaritalStatus == "married" && p.female {
		c.Household.HeadNationalID = c.Spouse.NationalID
		c.Household.RelationToHead = "spouse"
	}

	issueYear := max(p.year+14, 2021-r.intn(6))
	c.IDCard = IDCard{
		Number:     id,
		IssueDate:  fmt.Sprintf("%04d-%02d-%02d", issueYear, 1+r.intn(12), 1+r.intn(28)),
		IssuePlace: "Cục Cảnh sát quản lý hành chính về trật tự xã hội",
		ExpiryDate: expiry(p.year, month, day),
	}

	c.Relatives = []Relative{
		{FullName: c.Father.FullName, Relation: "father", NationalID: c.Father.NationalID},
		{FullName: c.Mother.FullName, Relation: "mother", NationalID: c.Mother.NationalID},
	}
	for range r.intn(3) {
		female := r.intn(2) == 0
		sibYear := min(max(p.year-5+r.intn(11), firstBirthYear), firstBirthYear+birthYears-1)
		c.Relatives = append(c.Relatives, Relative{
			FullName:   familyName + " " + g.given(r, female),
			Relation:   "sibling",
			NationalID: formatID(idParts{province: p.province, female: female, year: sibYear, sequence: r.intn(sequences)}),
		})
	}

	c.PhoneNumber = "09" + r.digits(8)
	c.Email = fmt.Sprintf("citizen%d@example.vn", index)
	c.Occupation = r.pick(t.occupations)
	c.EducationLevel = r.pick(t.educationLevels)
	c.BloodType = r.pick(t.bloodTypes)
	c.HealthInsuranceNumber = fmt.Sprintf("GD4%s%s", provinceCodes[3*p.province+1:3*p.province+3], r.digits(10))
	c.SocialInsuranceNumber = r.digits(10)
	c.TaxCode = r.digits(10)
	c.CriminalRecord = t.criminalNotes[0]
	if r.intn(50) == 0 {
		c.CriminalRecord = r.pick(t.criminalNotes[1:])
	}
	c.PhotoHash = g.hash(index, "photo")
	c.FingerprintHash = g.hash(index, "fingerprint")
	return c
}

func decodeParts(index int64) idParts {
	p := idParts{province: int(index % 63)}
	index /= 63
	p.female = index%genders == 1
	index /= genders
	p.year = firstBirthYear + int(index%birthYears)
	p.sequence = int(index / birthYears)
	return p
}

func (g *Generator) given(r *rng, female bool) string {
	if female {
		return r.pick(g.t.femaleMiddles) + " " + r.pick(g.t.femaleGivens)
	}
	return r.pick(g.t.maleMiddles) + " " + r.pick(g.t.maleGivens)
}

func (g *Generator) name(r *rng, female bool) string {
	return r.pick(g.t.familyNames) + " " + g.given(r, female)
}

func (g *Generator) address(r *rng, province int) Address {
	w := g.t.placeWords
	return Address{
		Province: g.t.provinces[province],
		District: "Huyện " + r.pick(w) + " " + r.pick(w),
		Ward:     "Xã " + r.pick(w) + " " + r.pick(w),
		Street:   fmt.Sprintf("Số %d đường %s", 1+r.intn(300), r.pick(g.t.streetNames)),
	}
}

// hash stands in for a biometric digest: stable per seed and record.
func (g *Generator) hash(index int64, kind string) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], g.seed)
	binary.BigEndian.PutUint64(b[8:], uint64(index))
	sum := sha256.Sum256(append(b[:], kind...))
	return hex.EncodeToString(sum[:])
}

// expiry applies the CCCD rule: a card expires on the birthday at 25, 40 or
// 60, whichever comes next, and never for citizens past 60.
func expiry(year, month, day int) string {
	const now = 2026
	for _, age := range []int{25, 40, 60} {
		if year+age > now {
			return fmt.Sprintf("%04d-%02d-%02d", year+age, month, day)
		}
	}
	return "9999-12-31"
}
