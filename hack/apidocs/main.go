// Command apidocs writes docs/api.md, the API reference of popconnect.io,
// from the Go types in api/v1alpha1: for every kind and every type it uses,
// a table of fields with their JSON name, type, whether they are required,
// their default, their validation (kubebuilder markers, CEL rules with their
// messages) and their doc comment. It reads the source with go/parser, so
// the reference says exactly what the CRDs are generated from.
//
//	go run ./hack/apidocs -o docs/api.md    # what `make api-docs` runs
//
// The output is deterministic: the same source gives the same bytes.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

func main() {
	dir := flag.String("dir", "api/v1alpha1", "the API package directory")
	out := flag.String("o", "", "output file (default stdout); written only when generation succeeds")
	flag.Parse()
	doc, err := generate(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "apidocs:", err)
		os.Exit(1)
	}
	if *out == "" {
		_, err = os.Stdout.Write(doc)
	} else {
		err = writeFile(*out, doc)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "apidocs:", err)
		os.Exit(1)
	}
}

// writeFile replaces path with data through a temporary file, so an
// interrupted run never leaves a half-written reference behind.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".apidocs-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// kinds are the API's kinds in the order the reference presents them.
var kinds = []string{"FieldCatalog", "PopulationGateway", "AgencyConnection"}

// typeInfo is one named type of the API package.
type typeInfo struct {
	name    string
	doc     []string // comment lines that are not markers
	markers []string // "+..." lines, without the "+"
	strct   *ast.StructType
	under   ast.Expr // the underlying type of a non-struct type
}

// constInfo is one documented constant (condition types and reasons).
type constInfo struct {
	name, value string
	doc         []string
}

type api struct {
	group, version string
	types          map[string]*typeInfo
	consts         []constInfo
}

// generate renders the reference of the API package in dir.
func generate(dir string) ([]byte, error) {
	a, err := load(dir)
	if err != nil {
		return nil, err
	}
	for _, k := range kinds {
		if a.types[k] == nil || a.types[k].strct == nil {
			return nil, fmt.Errorf("kind %s not found in %s", k, dir)
		}
	}
	w := &writer{api: a, done: map[string]bool{}}
	w.render()
	return w.buf.Bytes(), nil
}

func load(dir string) (*api, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	fset := token.NewFileSet()
	a := &api{version: filepath.Base(dir), types: map[string]*typeInfo{}}
	for _, p := range paths {
		base := filepath.Base(p)
		if strings.HasSuffix(base, "_test.go") || strings.HasPrefix(base, "zz_generated") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		if f.Doc != nil {
			for _, m := range splitComment(f.Doc).markers {
				if v, ok := strings.CutPrefix(m, "groupName="); ok {
					a.group = v
				}
			}
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok {
				continue
			}
			switch gd.Tok {
			case token.TYPE:
				for _, spec := range gd.Specs {
					ts := spec.(*ast.TypeSpec)
					cg := ts.Doc
					if cg == nil && len(gd.Specs) == 1 {
						cg = gd.Doc
					}
					c := splitComment(cg)
					t := &typeInfo{name: ts.Name.Name, doc: c.doc, markers: c.markers}
					if st, ok := ts.Type.(*ast.StructType); ok {
						t.strct = st
					} else {
						t.under = ts.Type
					}
					a.types[t.name] = t
				}
			case token.CONST:
				for _, spec := range gd.Specs {
					vs := spec.(*ast.ValueSpec)
					if len(vs.Names) != 1 || len(vs.Values) != 1 {
						continue
					}
					lit, ok := vs.Values[0].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						return nil, err
					}
					a.consts = append(a.consts, constInfo{name: vs.Names[0].Name, value: v, doc: splitComment(vs.Doc).doc})
				}
			}
		}
	}
	if a.group == "" {
		return nil, errors.New("no +groupName marker in " + dir)
	}
	return a, nil
}

type comment struct {
	doc, markers []string
}

// splitComment separates a comment's prose from its "+marker" lines.
func splitComment(cg *ast.CommentGroup) comment {
	var c comment
	if cg == nil {
		return c
	}
	for _, line := range strings.Split(cg.Text(), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "+"):
			c.markers = append(c.markers, line[1:])
		case line != "":
			c.doc = append(c.doc, line)
		}
	}
	return c
}

type writer struct {
	api   *api
	buf   bytes.Buffer
	done  map[string]bool // types already written
	queue []string
}

func (w *writer) p(format string, args ...any) { fmt.Fprintf(&w.buf, format, args...) }

func (w *writer) render() {
	a := w.api
	w.p("# API reference: %s/%s\n\n", a.group, a.version)
	w.p("<!-- Generated by `make api-docs` (go run ./hack/apidocs) from api/%s. Do not edit. -->\n\n", a.version)
	w.p("Every rule below that the schema can express is enforced by the API server: `kubectl apply`\n")
	w.p("rejects an object that breaks it, with a message that names the field. Rules that need\n")
	w.p("another object (a field missing from the catalog, a Sensitive field without a legal basis,\n")
	w.p("an agency code owned by another namespace) are reported as [conditions](#conditions).\n\n")
	w.p("Kinds:\n\n")
	for _, k := range kinds {
		w.p("- [%s](#%s): %s\n", k, anchor(k), firstSentence(a.types[k].doc))
	}
	w.p("- [Value types](#value-types) shared by several fields\n")
	w.p("- [Conditions](#conditions): condition types and reasons\n\n")
	for _, k := range kinds {
		w.kind(a.types[k])
	}
	w.valueTypes()
	w.conditions()
}

func (w *writer) kind(t *typeInfo) {
	w.done[t.name] = true
	w.p("## %s\n\n", t.name)
	w.p("%s\n\n", escapeText(strings.Join(t.doc, " ")))
	scope, short, cats := "Namespaced", "", ""
	var columns [][3]string
	for _, m := range t.markers {
		if v, ok := strings.CutPrefix(m, "kubebuilder:resource:"); ok {
			for _, kv := range strings.Split(v, ",") {
				k, val, _ := strings.Cut(kv, "=")
				switch k {
				case "scope":
					scope = val
				case "shortName":
					short = strings.ReplaceAll(val, ";", ", ")
				case "categories":
					cats = strings.ReplaceAll(val, ";", ", ")
				}
			}
		}
		if v, ok := strings.CutPrefix(m, "kubebuilder:printcolumn:"); ok {
			args := markerArgs(v)
			prio := ""
			if args["priority"] != "" && args["priority"] != "0" {
				prio = "with `-o wide`"
			}
			columns = append(columns, [3]string{args["name"], args["JSONPath"], prio})
		}
	}
	w.p("| | |\n|---|---|\n")
	w.p("| apiVersion | `%s/%s` |\n", w.api.group, w.api.version)
	w.p("| kind | `%s` |\n", t.name)
	w.p("| scope | %s |\n", scope)
	w.p("| resource | `%s` |\n", strings.ToLower(t.name)+"s")
	if short != "" {
		w.p("| short names | `%s` |\n", short)
	}
	if cats != "" {
		w.p("| categories | `%s` |\n", cats)
	}
	w.p("\n")
	if len(columns) > 0 {
		w.p("`kubectl get` columns:\n\n| Column | JSONPath | Shown |\n|---|---|---|\n")
		for _, c := range columns {
			shown := c[2]
			if shown == "" {
				shown = "always"
			}
			w.p("| %s | `%s` | %s |\n", c[0], c[1], shown)
		}
		w.p("\n")
	}
	w.fields(t)
	for len(w.queue) > 0 {
		next := w.queue[0]
		w.queue = w.queue[1:]
		w.structType(w.api.types[next])
	}
}

func (w *writer) structType(t *typeInfo) {
	w.p("### %s\n\n", t.name)
	if len(t.doc) > 0 {
		w.p("%s\n\n", escapeText(strings.Join(t.doc, " ")))
	}
	if rules := celRules(t.markers); len(rules) > 0 {
		w.p("Rules checked on the whole object:\n\n")
		for _, r := range rules {
			w.p("- %s\n", r)
		}
		w.p("\n")
	}
	w.fields(t)
}

// fields writes t's field table and queues the struct types it refers to.
func (w *writer) fields(t *typeInfo) {
	w.p("| Field | Type | Required | Default | Validation | Description |\n")
	w.p("|---|---|---|---|---|---|\n")
	for _, f := range t.strct.Fields.List {
		name, omitempty, inline := jsonTag(f)
		if inline || name == "-" {
			continue
		}
		if name == "" && len(f.Names) > 0 {
			name = f.Names[0].Name
		}
		c := splitComment(f.Doc)
		required := !omitempty
		def := ""
		for _, m := range c.markers {
			switch {
			case m == "required" || m == "kubebuilder:validation:Required":
				required = true
			case m == "optional" || m == "kubebuilder:validation:Optional":
				required = false
			case strings.HasPrefix(m, "kubebuilder:default="):
				def = "`" + strings.Trim(strings.TrimPrefix(m, "kubebuilder:default="), `"`) + "`"
			}
		}
		req := "optional"
		if required {
			req = "**required**"
		}
		w.p("| `%s` | %s | %s | %s | %s | %s |\n", name, w.typeName(f.Type), req, def,
			cell(w.validation(c.markers, f.Type)), cell(escapeText(strings.Join(c.doc, " "))))
	}
	w.p("\n")
}

// typeName renders a field type, linking the API's own types and queueing
// its struct types for a section of their own.
func (w *writer) typeName(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.StarExpr:
		return w.typeName(x.X)
	case *ast.ArrayType:
		return "[]" + w.typeName(x.Elt)
	case *ast.Ident:
		t, ok := w.api.types[x.Name]
		if !ok {
			return x.Name
		}
		if t.strct != nil && !w.done[x.Name] {
			w.done[x.Name] = true
			w.queue = append(w.queue, x.Name)
		}
		return fmt.Sprintf("[%s](#%s)", x.Name, anchor(x.Name))
	case *ast.SelectorExpr:
		pkg, _ := x.X.(*ast.Ident)
		full := x.Sel.Name
		if pkg != nil {
			full = pkg.Name + "." + x.Sel.Name
		}
		switch full {
		case "metav1.Duration":
			return "string (duration)"
		case "metav1.Time":
			return "string (date-time)"
		case "metav1.ObjectMeta", "metav1.LabelSelector", "metav1.Condition":
			return fmt.Sprintf("[%s](https://pkg.go.dev/k8s.io/apimachinery/pkg/apis/meta/v1#%s)", x.Sel.Name, x.Sel.Name)
		}
		return full
	}
	return fmt.Sprintf("%T", e)
}

// validation renders a field's validation markers, those of its named
// value type (which kubebuilder applies to every use of the type), and
// those of the list items.
func (w *writer) validation(markers []string, typ ast.Expr) string {
	parts := validationParts(markers, "")
	elem, list := typ, false
	for {
		if s, ok := elem.(*ast.StarExpr); ok {
			elem = s.X
			continue
		}
		if arr, ok := elem.(*ast.ArrayType); ok {
			elem, list = arr.Elt, true
			continue
		}
		break
	}
	if id, ok := elem.(*ast.Ident); ok {
		if t := w.api.types[id.Name]; t != nil && t.strct == nil {
			prefix := ""
			if list {
				prefix = "items: "
			}
			parts = append(parts, validationParts(t.markers, prefix)...)
		}
	}
	return strings.Join(parts, "<br>")
}

func validationParts(markers []string, prefix string) []string {
	var parts []string
	var mapKeys []string
	listType := ""
	for _, m := range markers {
		switch {
		case strings.HasPrefix(m, "listType="):
			listType = strings.TrimPrefix(m, "listType=")
		case strings.HasPrefix(m, "listMapKey="):
			mapKeys = append(mapKeys, strings.TrimPrefix(m, "listMapKey="))
		case strings.HasPrefix(m, "kubebuilder:validation:"):
			v := strings.TrimPrefix(m, "kubebuilder:validation:")
			p := prefix
			if rest, ok := strings.CutPrefix(v, "items:"); ok {
				p, v = "items: ", rest
			}
			if s := validationMarker(v); s != "" {
				parts = append(parts, p+s)
			}
		}
	}
	switch listType {
	case "set":
		parts = append(parts, prefix+"unique items")
	case "map":
		parts = append(parts, prefix+"unique by "+strings.Join(mapKeys, ", "))
	}
	return parts
}

// validationMarker renders one +kubebuilder:validation: marker.
func validationMarker(v string) string {
	if rule, ok := strings.CutPrefix(v, "XValidation:"); ok {
		return celRule(rule)
	}
	name, val, _ := strings.Cut(v, "=")
	switch name {
	case "Enum":
		vals := strings.Split(val, ";")
		for i := range vals {
			vals[i] = "`" + vals[i] + "`"
		}
		return "one of " + strings.Join(vals, ", ")
	case "Minimum":
		return "≥ " + val
	case "Maximum":
		return "≤ " + val
	case "MinLength":
		return "length ≥ " + val
	case "MaxLength":
		return "length ≤ " + val
	case "MinItems":
		return "items ≥ " + val
	case "MaxItems":
		return "items ≤ " + val
	case "Pattern":
		return "pattern " + code(strings.Trim(val, "`"))
	case "Type", "Required", "Optional":
		return ""
	}
	return code(v)
}

// celRules renders a type's +kubebuilder:validation:XValidation markers.
func celRules(markers []string) []string {
	var out []string
	for _, m := range markers {
		if v, ok := strings.CutPrefix(m, "kubebuilder:validation:XValidation:"); ok {
			r := celRule(v)
			if strings.Contains(markerArgs(v)["rule"], "oldSelf") {
				r += " (checked on update)"
			}
			out = append(out, r)
		}
	}
	return out
}

func celRule(v string) string {
	args := markerArgs(v)
	s := "CEL " + code(args["rule"])
	if msg := args["message"]; msg != "" {
		s += `, message: "` + escapeText(msg) + `"`
	}
	return s
}

// markerArgs parses a marker's comma-separated key=value arguments, where
// a value may be a double-quoted Go string or a backquoted raw string.
func markerArgs(s string) map[string]string {
	args := map[string]string{}
	for s != "" {
		key, rest, ok := strings.Cut(s, "=")
		if !ok {
			break
		}
		key = strings.TrimSpace(key)
		var val string
		switch {
		case strings.HasPrefix(rest, `"`):
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				val, rest = rest, ""
				break
			}
			val, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		case strings.HasPrefix(rest, "`"):
			end := strings.Index(rest[1:], "`")
			if end < 0 {
				val, rest = rest, ""
				break
			}
			val, rest = rest[1:end+1], rest[end+2:]
		default:
			val, rest, _ = strings.Cut(rest, ",")
		}
		args[key] = val
		s = strings.TrimPrefix(rest, ",")
	}
	return args
}

// valueTypes writes the named non-struct types (enums, patterns).
func (w *writer) valueTypes() {
	var names []string
	for n, t := range w.api.types {
		if t.strct == nil && len(t.markers) > 0 {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	w.p("## Value types\n\n")
	w.p("Named types whose validation applies wherever they are used (it is repeated in the\n")
	w.p("tables above).\n\n")
	w.p("| Type | Underlying | Validation | Description |\n|---|---|---|---|\n")
	for _, n := range names {
		t := w.api.types[n]
		w.p("| <a id=\"%s\"></a>`%s` | %s | %s | %s |\n", anchor(n), n, w.typeName(t.under),
			cell(strings.Join(validationParts(t.markers, ""), "<br>")), cell(escapeText(strings.Join(t.doc, " "))))
	}
	w.p("\n")
}

// conditions writes the condition types and reasons from conditions.go.
func (w *writer) conditions() {
	w.p("## Conditions\n\n")
	w.p("Every condition carries `observedGeneration`. A reason that names a problem only the user can\n")
	w.p("fix is also the reason of a Warning event on the object. What to do about each reason is in\n")
	w.p("[operations.md](operations.md#troubleshooting-by-condition-reason).\n\n")
	for _, group := range []struct{ title, prefix string }{{"Condition types", "Condition"}, {"Reasons", "Reason"}} {
		w.p("### %s\n\n| Value | Meaning |\n|---|---|\n", group.title)
		for _, c := range w.api.consts {
			if !strings.HasPrefix(c.name, group.prefix) {
				continue
			}
			doc := strings.Join(c.doc, " ")
			doc = strings.TrimPrefix(doc, c.name+" ")
			doc = strings.TrimPrefix(doc, c.name+": ")
			if rest, ok := strings.CutPrefix(doc, "is "); ok {
				doc = strings.ToUpper(rest[:1]) + rest[1:]
			} else if doc != "" {
				doc = strings.ToUpper(doc[:1]) + doc[1:]
			}
			w.p("| `%s` | %s |\n", c.value, cell(escapeText(doc)))
		}
		w.p("\n")
	}
}

// jsonTag returns a field's JSON name and whether it is omitempty or inline.
func jsonTag(f *ast.Field) (name string, omitempty, inline bool) {
	if f.Tag == nil {
		return "", false, false
	}
	tag, err := strconv.Unquote(f.Tag.Value)
	if err != nil {
		return "", false, false
	}
	for _, kv := range strings.Split(tag, " ") {
		v, ok := strings.CutPrefix(kv, `json:"`)
		if !ok {
			continue
		}
		parts := strings.Split(strings.TrimSuffix(v, `"`), ",")
		for _, o := range parts[1:] {
			omitempty = omitempty || o == "omitempty"
			inline = inline || o == "inline"
		}
		return parts[0], omitempty, inline
	}
	return "", false, false
}

// anchor is the GitHub heading anchor of a type name.
func anchor(name string) string { return strings.ToLower(name) }

func firstSentence(doc []string) string {
	s := strings.Join(doc, " ")
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i+1]
	}
	return escapeText(s)
}

// escapeText keeps prose such as <agencyCode> from being read as an HTML
// tag; a "<" that cannot start a tag (e.g. "a < b") is left as it is.
func escapeText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '<' && i+1 < len(s) && (isLetter(s[i+1]) || s[i+1] == '/' || s[i+1] == '!') {
			b.WriteString("&lt;")
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// code renders s as inline code.
func code(s string) string {
	ticks := "`"
	for strings.Contains(s, ticks) {
		ticks += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		return ticks + " " + s + " " + ticks
	}
	return ticks + s + ticks
}

// cell escapes the pipes of a table cell; GitHub's tables read "\|" as a
// pipe, inside code spans too.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
