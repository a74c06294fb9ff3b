// A test-only stand-in for `helm template`: Helm is not installable here, so the chart is
// rendered with Go's text/template and Debian's sprig, plus the Helm built-ins the chart uses
// (include, toYaml, .Values, .Release, .Chart). Not a Helm replacement: no hooks, no
// subcharts, no schema, no lookup.
//
// Usage: go run main.go CHART_DIR NAMESPACE [VALUES_FILE...]
package main

import (
	"bytes"
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"gopkg.in/yaml.v2"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "helm-renderer: "+format+"\n", args...)
	os.Exit(1)
}

func readYAML(path string) map[string]interface{} {
	data, err := ioutil.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	out := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &out); err != nil {
		fail("%s: %v", path, err)
	}
	return normalize(out).(map[string]interface{})
}

// yaml.v2 decodes maps as map[interface{}]interface{}; templates and toYaml want string keys.
func normalize(value interface{}) interface{} {
	switch v := value.(type) {
	case map[interface{}]interface{}:
		out := map[string]interface{}{}
		for key, item := range v {
			out[fmt.Sprint(key)] = normalize(item)
		}
		return out
	case map[string]interface{}:
		for key, item := range v {
			v[key] = normalize(item)
		}
		return v
	case []interface{}:
		for i, item := range v {
			v[i] = normalize(item)
		}
		return v
	}
	return value
}

// Helm's merge: maps merge key by key, anything else is replaced.
func merge(base, override map[string]interface{}) map[string]interface{} {
	for key, value := range override {
		if sub, ok := value.(map[string]interface{}); ok {
			if existing, ok := base[key].(map[string]interface{}); ok {
				base[key] = merge(existing, sub)
				continue
			}
		}
		base[key] = value
	}
	return base
}

func toYaml(value interface{}) string {
	data, err := yaml.Marshal(value)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func main() {
	if len(os.Args) < 3 {
		fail("usage: main.go CHART_DIR NAMESPACE [VALUES_FILE...]")
	}
	chartDir, namespace := os.Args[1], os.Args[2]
	chart := readYAML(filepath.Join(chartDir, "Chart.yaml"))
	values := readYAML(filepath.Join(chartDir, "values.yaml"))
	for _, path := range os.Args[3:] {
		values = merge(values, readYAML(path))
	}
	top := map[string]interface{}{
		"Values":  values,
		"Release": map[string]interface{}{"Name": chart["name"], "Namespace": namespace, "Service": "Helm"},
		"Chart":   map[string]interface{}{"Name": chart["name"], "Version": chart["version"], "AppVersion": chart["appVersion"]},
	}

	root := template.New("chart").Option("missingkey=error")
	funcs := sprig.TxtFuncMap()
	funcs["toYaml"] = toYaml
	funcs["include"] = func(name string, data interface{}) (string, error) {
		var out bytes.Buffer
		err := root.ExecuteTemplate(&out, name, data)
		return out.String(), err
	}
	root.Funcs(funcs)

	files, err := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	if err != nil {
		fail("%v", err)
	}
	sort.Strings(files)
	for _, file := range files {
		text, err := ioutil.ReadFile(file)
		if err != nil {
			fail("%v", err)
		}
		if _, err := root.New(filepath.Base(file)).Parse(string(text)); err != nil {
			fail("%s: %v", file, err)
		}
	}
	for _, file := range files {
		name := filepath.Base(file)
		if strings.HasPrefix(name, "_") {
			continue
		}
		var out bytes.Buffer
		if err := root.ExecuteTemplate(&out, name, top); err != nil {
			fail("%s: %v", name, err)
		}
		if strings.TrimSpace(out.String()) != "" {
			fmt.Print(strings.TrimLeft(out.String(), "\n"))
			if !strings.HasSuffix(out.String(), "\n") {
				fmt.Println()
			}
		}
	}
}
