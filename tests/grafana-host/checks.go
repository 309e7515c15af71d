package main

import (
	"bytes"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
)

// multiVersion is the typeVersion of the dataplane's timeseries-multi and numeric-multi
// readers; server-side expressions warn about any other version.
var multiVersion = data.FrameTypeVersion{0, 1}

// checkArrowEncoding checks what data.UnmarshalArrowFrames accepts without complaint but
// reads wrongly: it takes every Arrow Timestamp as nanoseconds, whatever its unit.
func checkArrowEncoding(res *pluginv2.QueryDataResponse) []string {
	var problems []string
	for refID, r := range res.Responses {
		if r.Format != pluginv2.DataFrameFormat_ARROW {
			continue
		}
		for i, b := range r.Frames {
			reader, err := ipc.NewFileReader(bytes.NewReader(b))
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s frame %d: not an Arrow IPC file: %v", refID, i, err))
				continue
			}
			for _, f := range reader.Schema().Fields() {
				if ts, ok := f.Type.(*arrow.TimestampType); ok && (ts.Unit != arrow.Nanosecond || ts.TimeZone != "") {
					problems = append(problems, fmt.Sprintf("%s frame %d field %q: %s, the SDK reads Timestamp values as nanoseconds without a time zone", refID, i, f.Name, ts))
				}
			}
			_ = reader.Close()
		}
	}
	return problems
}

// checkDataResponse checks one decoded response: its status, the frames' refIds and each
// frame type's contract, read as server-side expressions read it.
func checkDataResponse(refID string, raw *pluginv2.DataResponse, dr backend.DataResponse, fromAlert bool) []string {
	var problems []string
	if !backend.Status(raw.Status).IsValid() {
		problems = append(problems, fmt.Sprintf("%s: DataResponse.status is %d, not an HTTP status: Grafana reports it as %d", refID, raw.Status, int(dr.Status)))
	}
	if raw.Error != "" && raw.Status > 0 && raw.Status < 400 {
		problems = append(problems, fmt.Sprintf("%s: error %q with status %d", refID, raw.Error, raw.Status))
	}
	if raw.Error != "" && !backend.ErrorSource(raw.ErrorSource).IsValid() {
		problems = append(problems, fmt.Sprintf("%s: error with errorSource %q; Grafana counts errors as \"plugin\" or \"downstream\"", refID, raw.ErrorSource))
	}
	for i, f := range dr.Frames {
		if f.RefID != refID {
			problems = append(problems, fmt.Sprintf("%s frame %d: refId is %q", refID, i, f.RefID))
		}
	}
	if len(dr.Frames) == 0 {
		return problems
	}
	kind := frameType(dr.Frames[0])
	for i, f := range dr.Frames {
		if t := frameType(f); t != kind {
			problems = append(problems, fmt.Sprintf("%s frame %d: meta.type %q differs from frame 0's %q", refID, i, t, kind))
		}
		if t := frameType(f); t != data.FrameTypeUnknown && !t.IsKnownType() {
			problems = append(problems, fmt.Sprintf("%s frame %d: meta.type %q is not a type the SDK knows", refID, i, t))
		}
	}
	if fromAlert && (kind.IsTimeSeries() || kind.IsNumeric()) {
		problems = append(problems, prefix(refID, checkAlertInstances(dr.Frames))...)
	}
	switch kind {
	case data.FrameTypeTimeSeriesMulti:
		problems = append(problems, prefix(refID, checkTimeSeriesMulti(dr.Frames))...)
	case data.FrameTypeNumericMulti:
		problems = append(problems, prefix(refID, checkNumericMulti(dr.Frames))...)
	default:
		if fromAlert && dr.Error == nil {
			problems = append(problems, fmt.Sprintf("%s: an alert query answered frames of type %q; alerting reads time series and numbers", refID, kind))
		}
	}
	return problems
}

// checkAlertInstances: alerting turns each series or number into one alert instance named by
// its labels alone (not the field name) and refuses "duplicate results with labels".
func checkAlertInstances(frames data.Frames) []string {
	var problems []string
	seen := map[string]int{}
	for i, f := range frames {
		values := f.TypeIndices(validValueFields()...)
		if len(values) == 0 {
			continue
		}
		key := f.Fields[values[0]].Labels.String()
		if prev, dup := seen[key]; dup {
			problems = append(problems, fmt.Sprintf("frames %d and %d have the same labels %s: alerting refuses duplicate results", prev, i, key))
		}
		seen[key] = i
	}
	return problems
}

func frameType(f *data.Frame) data.FrameType {
	if f == nil || f.Meta == nil {
		return data.FrameTypeUnknown
	}
	return f.Meta.Type
}

func prefix(refID string, problems []string) []string {
	for i, p := range problems {
		problems[i] = refID + " " + p
	}
	return problems
}

// validValueFields are the value types the dataplane readers take: numbers and booleans.
func validValueFields() []data.FieldType {
	return append(data.NumericFieldTypes(), data.FieldTypeBool, data.FieldTypeNullableBool)
}

// checkTimeSeriesMulti applies the dataplane contract for timeseries-multi as its reader does
// with data validation on (one series per frame; a []time.Time field, not nullable, sorted
// oldest first; one numeric value field; fields of equal length; no two series with the same
// name and labels; a single frame without fields is "no data"). Fields the reader would
// silently ignore are reported too: they are data an alert rule never sees.
func checkTimeSeriesMulti(frames data.Frames) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if len(frames[0].Fields) == 0 {
		if len(frames) > 1 {
			add("frame 0 is the no-data frame but %d more frames follow (the reader ignores them)", len(frames)-1)
		}
		return versionProblems(frames)
	}
	seen := map[string]int{}
	for i, f := range frames {
		if len(f.Fields) == 0 {
			add("frame %d has no fields, invalid when there is more than one frame", i)
			continue
		}
		if _, err := f.RowLen(); err != nil {
			add("frame %d has fields of different lengths: %v", i, err)
			continue
		}
		times := f.TypeIndices(data.FieldTypeTime)
		if len(times) == 0 {
			add("frame %d has no []time.Time field (a nullable time field is not accepted)", i)
			continue
		}
		if len(times) > 1 {
			add("frame %d has %d time fields; the reader ignores all but the first", i, len(times))
		}
		values := f.TypeIndices(validValueFields()...)
		if len(values) == 0 {
			add("frame %d has no numeric or boolean value field", i)
			continue
		}
		if len(values) > 1 {
			add("frame %d has %d value fields; the reader ignores all but the first", i, len(values))
		}
		if others := f.TypeIndices(data.FieldTypeNullableTime, data.FieldTypeString, data.FieldTypeNullableString); len(others) > 0 {
			add("frame %d has %d string or nullable time fields the reader ignores", i, len(others))
		}
		value := f.Fields[values[0]]
		key := value.Name + " " + value.Labels.String()
		if prev, dup := seen[key]; dup {
			add("frames %d and %d are the same series (name %q, labels %s)", prev, i, value.Name, value.Labels.String())
		}
		seen[key] = i
		timeField := f.Fields[times[0]]
		for row := 1; row < timeField.Len(); row++ {
			if timeField.At(row).(time.Time).Before(timeField.At(row - 1).(time.Time)) {
				add("frame %d: time is not sorted oldest first (row %d)", i, row)
				break
			}
		}
	}
	return append(problems, versionProblems(frames)...)
}

// checkNumericMulti applies the dataplane contract for numeric-multi: every frame typed, one
// numeric value field with exactly one value, no two numbers with the same name and labels;
// a single frame without fields is "no data". The reader skips frames without a numeric
// field and takes the first of several: both are reported, as the numbers are lost.
func checkNumericMulti(frames data.Frames) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if len(frames[0].Fields) == 0 {
		if len(frames) > 1 {
			add("frame 0 is the no-data frame but %d more frames follow (the reader ignores them)", len(frames)-1)
		}
		return versionProblems(frames)
	}
	seen := map[string]int{}
	for i, f := range frames {
		values := f.TypeIndices(data.NumericFieldTypes()...)
		if len(values) == 0 {
			add("frame %d has no numeric field: the reader skips it", i)
			continue
		}
		if len(values) > 1 {
			add("frame %d has %d numeric fields; the reader takes only the first", i, len(values))
		}
		value := f.Fields[values[0]]
		if value.Len() != 1 {
			add("frame %d: the numeric field %q has %d values, a number is exactly one", i, value.Name, value.Len())
		}
		key := value.Name + " " + value.Labels.String()
		if prev, dup := seen[key]; dup {
			add("frames %d and %d are the same number (name %q, labels %s)", prev, i, value.Name, value.Labels.String())
		}
		seen[key] = i
	}
	return append(problems, versionProblems(frames)...)
}

func versionProblems(frames data.Frames) []string {
	var problems []string
	for i, f := range frames {
		if f.Meta != nil && f.Meta.TypeVersion != multiVersion {
			problems = append(problems, fmt.Sprintf("frame %d: typeVersion %s, the reader's is %s (server-side expressions warn)", i, f.Meta.TypeVersion, multiVersion))
		}
	}
	return problems
}
