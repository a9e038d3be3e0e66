package forgelink

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// fill sets every field reachable from v (through structs, pointers,
// slices and maps) to a value derived from seed, so that two fills with
// different seeds differ in every leaf.
func fill(t *testing.T, v reflect.Value, seed int) {
	t.Helper()
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Unix(int64(1_700_000_000+seed), 0).UTC()))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(t, v.Field(i), seed)
			}
		}
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(t, v.Elem(), seed)
	case reflect.Slice:
		if v.IsNil() {
			v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		}
		for i := range v.Len() {
			fill(t, v.Index(i), seed+i)
		}
	case reflect.Map:
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
			k := reflect.New(v.Type().Key()).Elem()
			fill(t, k, 0)
			v.SetMapIndex(k, reflect.New(v.Type().Elem()).Elem())
		}
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			fill(t, e, seed)
			v.SetMapIndex(k, e)
		}
	case reflect.String:
		v.SetString("s" + string(rune('a'+seed%26)))
	case reflect.Bool:
		v.SetBool(seed%2 == 1)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(seed + 1))
	case reflect.Uint8:
		v.SetUint(uint64(seed + 1))
	default:
		t.Fatalf("fill: no rule for %s", v.Type())
	}
}

// TestProjectClone fills every field of a project, clones it, then fills
// the original again with other values: the clone must not change. A new
// slice, map or pointer field that Clone does not copy fails here.
func TestProjectClone(t *testing.T) {
	var p Project
	fill(t, reflect.ValueOf(&p).Elem(), 1)
	c := p.Clone()
	if !reflect.DeepEqual(&p, c) {
		t.Fatalf("clone differs from the original:\n%+v\n%+v", p, *c)
	}
	before, _ := json.Marshal(c)
	fill(t, reflect.ValueOf(&p).Elem(), 7)
	if after, _ := json.Marshal(c); string(after) != string(before) {
		t.Errorf("changing the original changed the clone:\nbefore %s\nafter  %s", before, after)
	}

	// nil stays nil, empty stays empty (omitempty and the stores' equality
	// checks see the difference).
	var zero Project
	if z := zero.Clone(); !reflect.DeepEqual(&zero, z) {
		t.Errorf("clone of the zero project = %+v", *z)
	}
	empty := Project{Secrets: []WebhookSecret{}, Settings: Settings{AlwaysBuildBranches: []string{}}}
	if e := empty.Clone(); e.Secrets == nil || e.Settings.AlwaysBuildBranches == nil {
		t.Errorf("clone of empty slices = %+v", *e)
	}
}
