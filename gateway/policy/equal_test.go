package policy

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// fullAgency is an entry with every field set to a valid value that is not
// its zero value, so that changing any one field is a visible change.
func fullAgency() Agency {
	until := time.Date(2027, 12, 31, 0, 0, 0, 0, time.UTC)
	quota := int64(100000)
	return Agency{
		AgencyCode:           "BYT",
		AllowedFields:        []string{"dateOfBirth", "fullName"},
		AllowedOperations:    []Operation{OperationLookup, OperationVerify},
		RateLimit:            RateLimit{RequestsPerSecond: 50, Burst: 100, DailyQuota: &quota},
		ValidUntil:           &until,
		Suspended:            false,
		CertificateSHA256:    []string{strings.Repeat("a", 64)},
		Purpose:              "Health insurance eligibility",
		DisplayName:          "Bộ Y tế",
		DisclosureDelay:      "1h",
		RequireCaseReference: false,
	}
}

// validChange overrides, for a field whose generic change would make the
// entry invalid, the change made to it; the key is the field's path.
var validChange = map[string]func(v reflect.Value){
	"AllowedOperations": func(v reflect.Value) {
		v.Set(reflect.Append(v, reflect.ValueOf(OperationAccessHistory)))
	},
	"CertificateSHA256": func(v reflect.Value) {
		v.Set(reflect.Append(v, reflect.ValueOf(strings.Repeat("b", 64))))
	},
	"DisclosureDelay": func(v reflect.Value) { v.SetString("2h") },
}

// toNil names the change of a pointer or list field to nil.
const toNil = " (to nil)"

// oneFieldChange is an entry that differs from fullAgency in exactly one
// field (a leaf of Agency or of a struct it nests).
type oneFieldChange struct {
	path   string
	change func(v reflect.Value)
}

// oneFieldChanges walks typ with reflection and returns, for every leaf
// field, the changes that must make an entry different: a new field gets
// one by its kind, or the test fails asking for one.
func oneFieldChanges(t *testing.T, typ reflect.Type, prefix string) []oneFieldChange {
	t.Helper()
	var out []oneFieldChange
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		path := prefix + f.Name
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Time{}) {
			for _, c := range oneFieldChanges(t, f.Type, path+".") {
				out = append(out, oneFieldChange{path: c.path, change: field(i, c.change)})
			}
			continue
		}
		if c, ok := validChange[path]; ok {
			out = append(out, oneFieldChange{path: path, change: field(i, c)})
			continue
		}
		changes := changesOfKind(t, path, f.Type)
		for j, c := range changes {
			name := path
			if len(changes) > 1 {
				name += []string{"", toNil}[j]
			}
			out = append(out, oneFieldChange{path: name, change: field(i, c)})
		}
	}
	return out
}

// field applies a change to the i-th field of a struct value.
func field(i int, change func(reflect.Value)) func(reflect.Value) {
	return func(v reflect.Value) { change(v.Field(i)) }
}

// changesOfKind are the changes of a field by its type: a different value,
// and for a pointer or a list, also nil (absent often means something else
// than empty, as certificateSHA256 shows).
func changesOfKind(t *testing.T, path string, typ reflect.Type) []func(reflect.Value) {
	t.Helper()
	switch {
	case typ == reflect.TypeOf(time.Time{}):
		return []func(reflect.Value){func(v reflect.Value) {
			v.Set(reflect.ValueOf(v.Interface().(time.Time).Add(time.Second)))
		}}
	}
	switch typ.Kind() {
	case reflect.String:
		return []func(reflect.Value){func(v reflect.Value) { v.SetString(v.String() + "X") }}
	case reflect.Bool:
		return []func(reflect.Value){func(v reflect.Value) { v.SetBool(!v.Bool()) }}
	case reflect.Int, reflect.Int32, reflect.Int64:
		return []func(reflect.Value){func(v reflect.Value) { v.SetInt(v.Int() + 1) }}
	case reflect.Slice:
		if typ.Elem().Kind() != reflect.String {
			t.Fatalf("field %s: no change known for a list of %s; teach oneFieldChanges one", path, typ.Elem())
		}
		return []func(reflect.Value){
			func(v reflect.Value) { v.Set(reflect.Append(v, reflect.ValueOf("zzz").Convert(typ.Elem()))) },
			func(v reflect.Value) { v.Set(reflect.Zero(typ)) },
		}
	case reflect.Pointer:
		inner := changesOfKind(t, path, typ.Elem())
		return []func(reflect.Value){
			func(v reflect.Value) {
				p := reflect.New(typ.Elem())
				p.Elem().Set(v.Elem())
				inner[0](p.Elem())
				v.Set(p)
			},
			func(v reflect.Value) { v.Set(reflect.Zero(typ)) },
		}
	}
	t.Fatalf("field %s: no change known for kind %s; teach oneFieldChanges one so that SameEntry is tested on it", path, typ.Kind())
	return nil
}

// TestSameEntryCoversEveryField fails when a field of Agency (or of a
// struct it nests) is not covered by SameEntry: an entry that differs in
// that field alone would then be taken for the same, and a running gateway
// would keep the old one on reload. It also checks that the field survives
// the shard encoding and the strict decoder, so that a field added without
// a JSON key, or one the decoder refuses, is caught too.
func TestSameEntryCoversEveryField(t *testing.T) {
	base := fullAgency()
	if !SameEntry(base, fullAgency()) {
		t.Fatal("SameEntry is false for two equal entries")
	}
	changes := oneFieldChanges(t, reflect.TypeOf(base), "")
	if n := reflect.TypeOf(base).NumField(); len(changes) < n {
		t.Fatalf("%d changes for %d fields", len(changes), n)
	}
	for _, c := range changes {
		t.Run(c.path, func(t *testing.T) {
			changed := fullAgency()
			c.change(reflect.ValueOf(&changed).Elem())
			if reflect.DeepEqual(base, changed) {
				t.Fatalf("the change of %s changed nothing", c.path)
			}
			if SameEntry(base, changed) || SameEntry(changed, base) {
				t.Errorf("SameEntry ignores %s: %+v and %+v are taken for the same entry", c.path, base, changed)
			}
			if strings.HasSuffix(c.path, toNil) && changed.Validate() != nil {
				return // a required field: an entry without it is never written
			}
			decoded := roundTrip(t, changed)
			if !SameEntry(decoded, changed) {
				t.Errorf("%s does not survive encoding and decoding: %+v became %+v", c.path, changed, decoded)
			}
		})
	}
}

// roundTrip encodes an entry in a shard document and decodes it as the
// gateway does.
func roundTrip(t *testing.T, a Agency) Agency {
	t.Helper()
	b, err := EncodeAgency(a)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := DecodeShardValue(ShardDataKey, []byte(`{"version":"v","agencies":[`+string(b)+`]}`), false)
	if err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return doc.Agencies[0]
}

// TestSameEntryIgnoresOrder: fields, operations and pins are sets, and a
// duration is compared by its meaning.
func TestSameEntryIgnoresOrder(t *testing.T) {
	tests := []struct {
		desc   string
		change func(*Agency)
	}{
		{"fields reordered", func(a *Agency) { a.AllowedFields = []string{"fullName", "dateOfBirth"} }},
		{"operations reordered", func(a *Agency) { a.AllowedOperations = []Operation{OperationVerify, OperationLookup} }},
		{"a field repeated", func(a *Agency) { a.AllowedFields = append(a.AllowedFields, "fullName") }},
		{"delay spelt otherwise", func(a *Agency) { a.DisclosureDelay = "60m" }},
		{"time in another zone", func(a *Agency) { v := a.ValidUntil.In(time.FixedZone("ICT", 7*3600)); a.ValidUntil = &v }},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			a := fullAgency()
			tc.change(&a)
			if !SameEntry(fullAgency(), a) {
				t.Errorf("SameEntry is false for %+v", a)
			}
		})
	}
}
