package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
)

// goldenDir holds the SDK's own golden frame (data/testdata of grafana-plugin-sdk-go), kept
// beside the repository in ../shared.
func goldenDir(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("GRAFANA_GOLDEN_DIR"), filepath.Join("..", "..", "..", "shared", "grafana-golden")}
	// in a git worktree: beside the main checkout
	if common, err := exec.Command("git", "rev-parse", "--path-format=absolute", "--git-common-dir").Output(); err == nil {
		candidates = append(candidates, filepath.Join(strings.TrimSpace(string(common)), "..", "..", "shared", "grafana-golden"))
	}
	for _, dir := range candidates {
		if _, err := os.Stat(filepath.Join(dir, "all_types.golden.arrow")); dir != "" && err == nil {
			return dir
		}
	}
	t.Fatalf("the SDK's golden frame is missing from %v (set GRAFANA_GOLDEN_DIR)", candidates[1:])
	return ""
}

func response(frames ...[]byte) *pluginv2.QueryDataResponse {
	return &pluginv2.QueryDataResponse{Responses: map[string]*pluginv2.DataResponse{"A": {Frames: frames, Status: 200}}}
}

func arrowBytes(t *testing.T, frames ...*data.Frame) [][]byte {
	t.Helper()
	b, err := data.Frames(frames).MarshalArrow()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func typed(f *data.Frame, t data.FrameType) *data.Frame {
	f.RefID = "A"
	return f.SetMeta(&data.FrameMeta{Type: t, TypeVersion: data.FrameTypeVersion{0, 1}})
}

func seriesFrame(device string, times ...int64) *data.Frame {
	ts := make([]time.Time, len(times))
	for i, v := range times {
		ts[i] = time.UnixMilli(v)
	}
	return typed(data.NewFrame("bps", data.NewField("time", nil, ts), data.NewField("bps", data.Labels{"device": device}, make([]float64, len(times)))), data.FrameTypeTimeSeriesMulti)
}

func numberFrame(device string, values ...float64) *data.Frame {
	return typed(data.NewFrame("n", data.NewField("n", data.Labels{"device": device}, values)), data.FrameTypeNumericMulti)
}

func TestGoldenFrameDecodesAndMarshalsAsTheSDKsOwnJSON(t *testing.T) {
	dir := goldenDir(t)
	arrowFile, err := os.ReadFile(filepath.Join(dir, "all_types.golden.arrow"))
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, err := os.ReadFile(filepath.Join(dir, "all_types.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	res := response(arrowFile)
	body, problems := JudgeQueryData(res, []string{"A"}, false)
	if len(problems) > 0 {
		t.Fatalf("the SDK's own frame was rejected: %v", problems)
	}
	var got struct {
		Results map[string]struct {
			Status int               `json:"status"`
			Frames []json.RawMessage `json:"frames"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Results["A"].Status != 200 || len(got.Results["A"].Frames) != 1 {
		t.Fatalf("unexpected response %s", body)
	}
	var gotFrame any
	_ = json.Unmarshal(got.Results["A"].Frames[0], &gotFrame)
	// The golden JSON is written from the SDK's in-memory frame, where one field config has
	// "min": null and "max": null; in Arrow those are nil and the SDK's JSON leaves them out.
	var want any
	_ = json.Unmarshal(wantJSON, &want)
	for _, f := range want.(map[string]any)["schema"].(map[string]any)["fields"].([]any) {
		if config, ok := f.(map[string]any)["config"].(map[string]any); ok {
			for k, v := range config {
				if v == nil {
					delete(config, k)
				}
			}
		}
	}
	g, _ := json.Marshal(gotFrame)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Fatalf("the frame's JSON differs from all_types.golden.json:\n got %.600s\nwant %.600s", g, w)
	}
}

func TestAcceptsValidMultiFrames(t *testing.T) {
	cases := map[string][][]byte{
		"two series":      arrowBytes(t, seriesFrame("r1", 1, 2, 3), seriesFrame("r2", 5)),
		"series no data":  arrowBytes(t, typed(data.NewFrame("A"), data.FrameTypeTimeSeriesMulti)),
		"numbers":         arrowBytes(t, numberFrame("r1", 1), numberFrame("r2", 2)),
		"numbers no data": arrowBytes(t, typed(data.NewFrame("A"), data.FrameTypeNumericMulti)),
		"a table, no type": arrowBytes(t, func() *data.Frame {
			f := data.NewFrame("t", data.NewField("s", nil, []string{"x"}))
			f.RefID = "A"
			return f
		}()),
	}
	for name, frames := range cases {
		if _, problems := JudgeQueryData(response(frames...), []string{"A"}, false); len(problems) > 0 {
			t.Errorf("%s: %v", name, problems)
		}
	}
}

func TestRejects(t *testing.T) {
	nullableTime := typed(data.NewFrame("bps",
		data.NewField("time", nil, []*time.Time{new(time.Time)}),
		data.NewField("bps", nil, []float64{1})), data.FrameTypeTimeSeriesMulti)
	twoValues := typed(data.NewFrame("bps",
		data.NewField("time", nil, []time.Time{time.UnixMilli(1)}),
		data.NewField("a", nil, []float64{1}), data.NewField("b", nil, []float64{1})), data.FrameTypeTimeSeriesMulti)
	oldVersion := seriesFrame("r1", 1)
	oldVersion.Meta.TypeVersion = data.FrameTypeVersion{0, 0}
	wrongRef := seriesFrame("r1", 1)
	wrongRef.RefID = "B"
	cases := []struct {
		name      string
		res       *pluginv2.QueryDataResponse
		fromAlert bool
		want      string
	}{
		{"unsorted time", response(arrowBytes(t, seriesFrame("r1", 3, 1))...), false, "not sorted"},
		{"nullable time", response(arrowBytes(t, nullableTime)...), false, "no []time.Time field"},
		{"the same series twice", response(arrowBytes(t, seriesFrame("r1", 1), seriesFrame("r1", 2))...), false, "the same series"},
		{"an ignored value field", response(arrowBytes(t, twoValues)...), false, "ignores all but the first"},
		{"another type version", response(arrowBytes(t, oldVersion)...), false, "typeVersion 0.0"},
		{"a frame of another refId", response(arrowBytes(t, wrongRef)...), false, `refId is "B"`},
		{"mixed types", response(arrowBytes(t, seriesFrame("r1", 1), numberFrame("r1", 1))...), false, "differs from frame 0"},
		{"two values for one number", response(arrowBytes(t, numberFrame("r1", 1, 2))...), false, "a number is exactly one"},
		{"the same number twice", response(arrowBytes(t, numberFrame("r1", 1), numberFrame("r1", 2))...), false, "the same number"},
		{"a table for an alert", response(arrowBytes(t, func() *data.Frame {
			f := data.NewFrame("t", data.NewField("s", nil, []string{"x"}))
			f.RefID = "A"
			return f
		}())...), true, "alert query"},
		{"two metrics with the same labels in an alert", response(arrowBytes(t, seriesFrame("r1", 1), func() *data.Frame {
			f := seriesFrame("r1", 1)
			f.Fields[1].Name = "other"
			return f
		}())...), true, "alerting refuses duplicate results"},
		{"an error without a source", &pluginv2.QueryDataResponse{Responses: map[string]*pluginv2.DataResponse{"A": {Status: 400, Error: "bad"}}}, false, `errorSource ""`},
		{"no status", &pluginv2.QueryDataResponse{Responses: map[string]*pluginv2.DataResponse{"A": {}}}, false, "DataResponse.status is 0"},
		{"a missing response", &pluginv2.QueryDataResponse{Responses: map[string]*pluginv2.DataResponse{}}, false, "no response for this refId"},
		{"not Arrow", response([]byte("{}")), false, "backend.FromProto"},
		{"milliseconds", response(millisecondFrame(t)), false, "TIMESTAMP"},
	}
	for _, c := range cases {
		_, problems := JudgeQueryData(c.res, []string{"A"}, c.fromAlert)
		if !strings.Contains(strings.ToUpper(strings.Join(problems, "\n")), strings.ToUpper(c.want)) {
			t.Errorf("%s: want a problem containing %q, got %v", c.name, c.want, problems)
		}
	}
}

// millisecondFrame is an Arrow file whose time is Timestamp(ms): data.UnmarshalArrowFrames
// reads it without error, as nanoseconds.
func millisecondFrame(t *testing.T) []byte {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{{Name: "time", Type: &arrow.TimestampType{Unit: arrow.Millisecond},
		Metadata: arrow.NewMetadata([]string{"tstype"}, []string{"time"})}}, &arrow.Metadata{})
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	b.Field(0).(*array.TimestampBuilder).Append(1000)
	rec := b.NewRecord()
	var buf bytes.Buffer
	w, err := ipc.NewFileWriter(&buf, ipc.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := data.UnmarshalArrowFrame(buf.Bytes()); err != nil {
		t.Fatalf("the SDK rejects the ms frame itself (%v): this case no longer needs the extra check", err)
	}
	return buf.Bytes()
}

// sdkPlugin builds testdata/sdkplugin, a plugin served by the SDK's backend.Serve.
func sdkPlugin(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	exe := filepath.Join(dir, "gpx_sdk_test")
	build := exec.Command("go", "build", "-buildvcs=false", "-o", exe, "./testdata/sdkplugin")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build testdata/sdkplugin: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "plugin.json"), []byte(`{"id":"test-sdk-datasource","info":{"version":"1.2.3"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return exe
}

func TestSessionWithAPluginServedByTheSDK(t *testing.T) {
	exe := sdkPlugin(t)
	ctx := `"context":{"orgId":1,"user":{"login":"vic","role":"Viewer"},"datasource":{"id":1,"uid":"u1","name":"n","jsonData":{"k":"v"},"decryptedSecureJsonData":{"token":"s3"},"lastUpdatedMS":1}}`
	stdin := strings.Join([]string{
		`{"id":1,"call":"check-health",` + ctx + `}`,
		`{"id":2,"call":"query",` + ctx + `,"queries":[{"refId":"good","timeRange":{"from":0,"to":1}},{"refId":"numbers"}]}`,
		`{"id":3,"call":"query",` + ctx + `,"queries":[{"refId":"unsorted"},{"refId":"good"}]}`,
		`{"id":4,"call":"resource",` + ctx + `,"method":"POST","path":"/runs","query":"a=1","body":{"x":1}}`,
		`{"id":5,"call":"bogus"}`,
		`{"id":6,"call":"shutdown"}`,
	}, "\n")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--plugin", exe, "--grafana-version", "11.0.0"}, strings.NewReader(stdin), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	replies := map[string]Reply{}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var r Reply
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("reply %q: %v", line, err)
		}
		replies[string(r.ID)] = r
	}
	expect := func(id string, ok bool, contains ...string) {
		t.Helper()
		r := replies[id]
		text := string(r.Result) + r.Error + strings.Join(r.Problems, "\n")
		if r.OK != ok {
			t.Errorf("call %s: ok=%v, want %v: %s", id, r.OK, ok, text)
		}
		for _, c := range contains {
			if !strings.Contains(text, c) {
				t.Errorf("call %s: %q not in %s", id, c, text)
			}
		}
	}
	expect("1", true, `"status":"OK"`, "uid u1 secret s3 grafana 11.0.0", `"details":{"k":"v"}`)
	expect("2", true, `"good":{"status":200,"frames":[{"schema":{"name":"bps","refId":"good"`, `"values":[[1000,2000],[0,1]]`, `"labels":{"device":"r1"}`, `"role":"Viewer","user":"vic"`)
	expect("3", false, "unsorted frame 0: time is not sorted", `"good":{"status":200`)
	expect("4", true, `"status":202`, `"method":"POST"`, `"url":"runs?a=1"`, `"body":{"x":1}`)
	expect("5", false, `unknown call "bogus"`)
	expect("6", true, `"graceful":true`, `"exitCode":0`)
}

func TestOneCallExitsNonZeroWhenTheJudgeRejects(t *testing.T) {
	exe := sdkPlugin(t)
	var stdout, stderr bytes.Buffer
	code := run([]string{"--plugin", exe, "query"}, strings.NewReader(`{"queries":[{"refId":"unsorted"}]}`), &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "time is not sorted") || !strings.Contains(stdout.String(), `"results"`) {
		t.Fatalf("exit %d, stdout %s, stderr %s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"--plugin", exe, "query"}, strings.NewReader(`{"queries":[{"refId":"good"}]}`), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if code := run([]string{"query"}, strings.NewReader(""), &stdout, &stderr); code != 2 {
		t.Fatalf("without --plugin: exit %d", code)
	}
}

func TestDecodeJudgesFramesWithoutAPlugin(t *testing.T) {
	frames := arrowBytes(t, seriesFrame("r1", 1, 2))
	request, _ := json.Marshal(map[string]any{"refId": "A", "frames": frames})
	var stdout, stderr bytes.Buffer
	if code := run([]string{"decode"}, bytes.NewReader(request), &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), `"values":[[1,2],[0,0]]`) {
		t.Fatalf("exit %d: %s %s", code, stdout.String(), stderr.String())
	}
	unsorted, _ := json.Marshal(map[string]any{"refId": "A", "frames": arrowBytes(t, seriesFrame("r1", 2, 1))})
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"decode"}, bytes.NewReader(unsorted), &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "not sorted") {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}

func TestParsesPrometheusTextWithPrometheusOwnParser(t *testing.T) {
	text := "# HELP q_seconds Query time\n# TYPE q_seconds histogram\n" +
		"q_seconds_bucket{query_type=\"latest\",le=\"0.1\"} 2\nq_seconds_bucket{query_type=\"latest\",le=\"+Inf\"} 3\n" +
		"q_seconds_sum{query_type=\"latest\"} 0.5\nq_seconds_count{query_type=\"latest\"} 3\n" +
		"# HELP mem_bytes Memory\n# TYPE mem_bytes gauge\nmem_bytes 1234\n"
	families, problems := ParsePrometheusText([]byte(text))
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	q := families["q_seconds"]
	if q.Type != "histogram" || len(q.Samples) != 1 || *q.Samples[0].Count != 3 || *q.Samples[0].Sum != 0.5 || q.Samples[0].Labels["query_type"] != "latest" {
		t.Fatalf("histogram read as %+v", q)
	}
	if m := families["mem_bytes"]; m.Type != "gauge" || *m.Samples[0].Value != 1234 {
		t.Fatalf("gauge read as %+v", m)
	}
	if f, p := ParsePrometheusText(nil); len(f) != 0 || len(p) != 0 {
		t.Fatalf("empty text: %v %v", f, p)
	}
	for name, bad := range map[string]string{
		"not the format": "this is not { prometheus\n",
		"no HELP":        "# TYPE x counter\nx 1\n",
	} {
		if _, p := ParsePrometheusText([]byte(bad)); len(p) == 0 {
			t.Errorf("%s: accepted", name)
		}
	}
}
