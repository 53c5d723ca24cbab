package popdb

// Citizen is one synthetic population-database record. Its JSON paths are
// exactly the field names of the sample FieldCatalog (plus nationalId), so
// the operator's samples and the simulator agree; FieldPaths lists them.
type Citizen struct {
	NationalID            string     `json:"nationalId"`
	FullName              string     `json:"fullName"`
	DateOfBirth           string     `json:"dateOfBirth"`
	Gender                string     `json:"gender"`
	Nationality           string     `json:"nationality"`
	Ethnicity             string     `json:"ethnicity"`
	Religion              string     `json:"religion"`
	PermanentAddress      Address    `json:"permanentAddress"`
	TemporaryAddress      Address    `json:"temporaryAddress"`
	PlaceOfOrigin         string     `json:"placeOfOrigin"`
	MaritalStatus         string     `json:"maritalStatus"`
	Household             Household  `json:"household"`
	Father                Person     `json:"father"`
	Mother                Person     `json:"mother"`
	Spouse                Person     `json:"spouse"`
	IDCard                IDCard     `json:"idCard"`
	Relatives             []Relative `json:"relatives"`
	PhoneNumber           string     `json:"phoneNumber"`
	Email                 string     `json:"email"`
	Occupation            string     `json:"occupation"`
	EducationLevel        string     `json:"educationLevel"`
	BloodType             string     `json:"bloodType"`
	HealthInsuranceNumber string     `json:"healthInsuranceNumber"`
	SocialInsuranceNumber string     `json:"socialInsuranceNumber"`
	TaxCode               string     `json:"taxCode"`
	CriminalRecord        string     `json:"criminalRecord"`
	PhotoHash             string     `json:"photoHash"`
	FingerprintHash       string     `json:"fingerprintHash"`
}

// Address is a Vietnamese address from province down to street.
type Address struct {
	Province string `json:"province"`
	District string `json:"district"`
	Ward     string `json:"ward"`
	Street   string `json:"street"`
}

// Household is the citizen's household registration.
type Household struct {
	HouseholdID    string `json:"householdId"`
	HeadNationalID string `json:"headNationalId"`
	RelationToHead string `json:"relationToHead"`
}

// Person names a related citizen. Spouse is empty strings when unmarried, so
// every record has the same paths.
type Person struct {
	FullName   string `json:"fullName"`
	NationalID string `json:"nationalId"`
}

// IDCard is the citizen identity card.
type IDCard struct {
	Number     string `json:"number"`
	IssueDate  string `json:"issueDate"`
	IssuePlace string `json:"issuePlace"`
	ExpiryDate string `json:"expiryDate"`
}

// Relative is one entry of the relatives array.
type Relative struct {
	FullName   string `json:"fullName"`
	Relation   string `json:"relation"`
	NationalID string `json:"nationalId"`
}

// FieldPaths returns the dotted paths of a record other than nationalId, in
// record order: the names the sample FieldCatalog uses.
func FieldPaths() []string {
	return []string{
		"fullName", "dateOfBirth", "gender", "nationality", "ethnicity", "religion",
		"permanentAddress.province", "permanentAddress.district", "permanentAddress.ward", "permanentAddress.street",
		"temporaryAddress.province", "temporaryAddress.district", "temporaryAddress.ward", "temporaryAddress.street",
		"placeOfOrigin", "maritalStatus",
		"household.householdId", "household.headNationalId", "household.relationToHead",
		"father.fullName", "father.nationalId", "mother.fullName", "mother.nationalId",
		"spouse.fullName", "spouse.nationalId",
		"idCard.number", "idCard.issueDate", "idCard.issuePlace", "idCard.expiryDate",
		"relatives.fullName", "relatives.relation", "relatives.nationalId",
		"phoneNumber", "email", "occupation", "educationLevel", "bloodType",
		"healthInsuranceNumber", "socialInsuranceNumber", "taxCode", "criminalRecord",
		"photoHash", "fingerprintHash",
	}
}
