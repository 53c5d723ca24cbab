package popdb

import (
	"errors"
	"fmt"
)

// A national ID follows Vietnam's 12-digit citizen identity card (CCCD)
// layout: a 3-digit province code, one digit for gender and century, the last
// two digits of the birth year and a 6-digit sequence. The generator maps
// record indexes onto that space bijectively, so an ID decodes back to the
// index of the record it names and no record has to be stored.
const (
	firstBirthYear = 1930
	birthYears     = 91 // 1930..2020
	sequences      = 1_000_000
	genders        = 2
)

// MaxRecords is the number of distinct national IDs the layout can name.
const MaxRecords = int64(63) * genders * birthYears * sequences

// ErrMalformedID is returned for a string that is not 12 ASCII digits.
var ErrMalformedID = errors.New("national ID must be 12 digits")

// ValidNationalID reports whether s has the shape of a national ID: exactly
// 12 ASCII digits. It says nothing about whether the ID exists.
func ValidNationalID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// idParts is a national ID broken into its fields.
type idParts struct {
	province int // index into the province tables
	female   bool
	year     int
	sequence int
}

// NationalID returns the national ID of record index, which must be in
// [0, MaxRecords).
func NationalID(index int64) (string, error) {
	if index < 0 || index >= MaxRecords {
		return "", fmt.Errorf("record index %d out of range [0, %d)", index, MaxRecords)
	}
	p := idParts{province: int(index % 63)}
	index /= 63
	p.female = index%genders == 1
	index /= genders
	p.year = firstBirthYear + int(index%birthYears)
	p.sequence = int(index / birthYears)
	return formatID(p), nil
}

func formatID(p idParts) string {
	digit := 0
	if p.year >= 2000 {
		digit = 2
	}
	if p.female {
		digit++
	}
	code := provinceCodes[3*p.province : 3*p.province+3]
	return fmt.Sprintf("%s%d%02d%06d", code, digit, p.year%100, p.sequence)
}

// RecordIndex decodes a national ID into the record index it names. It fails
// for malformed IDs and for well-formed ones outside the generator's layout
// (an unknown province code, a birth year out of range, a century digit that
// does not match the year).
func RecordIndex(id string) (int64, error) {
	if !ValidNationalID(id) {
		return 0, ErrMalformedID
	}
	n := func(s string) int {
		v := 0
		for i := 0; i < len(s); i++ {
			v = v*10 + int(s[i]-'0')
		}
		return v
	}
	province := -1
	for i := 0; i < len(provinceCodes); i += 3 {
		if provinceCodes[i:i+3] == id[0:3] {
			province = i / 3
			break
		}
	}
	if province < 0 {
		return 0, fmt.Errorf("unknown province code %s", id[0:3])
	}
	digit := n(id[3:4])
	if digit > 3 {
		return 0, fmt.Errorf("gender/century digit %d not in 0..3", digit)
	}
	year := 1900 + n(id[4:6])
	if digit >= 2 {
		year += 100
	}
	if year < firstBirthYear || year >= firstBirthYear+birthYears {
		return 0, fmt.Errorf("birth year %d outside %d..%d", year, firstBirthYear, firstBirthYear+birthYears-1)
	}
	seq := int64(n(id[6:12]))
	index := (seq*birthYears+int64(year-firstBirthYear))*genders + int64(digit%2)
	return index*63 + int64(province), nil
}
