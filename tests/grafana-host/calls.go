package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Request is one call, as read from a line on stdin (session mode) or from stdin (one call).
type Request struct {
	ID   json.RawMessage `json:"id,omitempty"`
	Call string          `json:"call"`
	// Context is the plugin context Grafana sends with every call.
	Context *RequestContext `json:"context,omitempty"`
	// Headers: QueryData and CheckHealth headers (e.g. {"FromAlert": "true"}); CallResource
	// HTTP headers (one value each).
	Headers map[string]string `json:"headers,omitempty"`
	Queries []QueryInput      `json:"queries,omitempty"`
	// CallResource: method (default GET), path below /resources/ and the raw query string
	Method string `json:"method,omitempty"`
	Path   string `json:"path,omitempty"`
	Query  string `json:"query,omitempty"`
	// CallResource body: Body is sent as JSON; BodyText as it is
	Body     json.RawMessage `json:"body,omitempty"`
	BodyText *string         `json:"bodyText,omitempty"`
	// TimeoutMs bounds the call (default 60 s)
	TimeoutMs int64 `json:"timeoutMs,omitempty"`
}

type RequestContext struct {
	OrgID int64 `json:"orgId"`
	// User is nil for calls without a signed-in user (alert evaluation, anonymous without a session)
	User          *UserInput        `json:"user"`
	Datasource    *DatasourceInput  `json:"datasource"`
	GrafanaConfig map[string]string `json:"grafanaConfig,omitempty"`
}

type UserInput struct {
	Login string `json:"login"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	// Viewer, Editor, Admin (Grafana's org roles), or "" / "None"
	Role string `json:"role"`
}

type DatasourceInput struct {
	ID                      int64             `json:"id"`
	UID                     string            `json:"uid"`
	Name                    string            `json:"name"`
	URL                     string            `json:"url,omitempty"`
	JSONData                json.RawMessage   `json:"jsonData,omitempty"`
	DecryptedSecureJSONData map[string]string `json:"decryptedSecureJsonData,omitempty"`
	LastUpdatedMS           int64             `json:"lastUpdatedMS"`
}

type QueryInput struct {
	RefID         string `json:"refId"`
	QueryType     string `json:"queryType,omitempty"`
	MaxDataPoints int64  `json:"maxDataPoints,omitempty"`
	IntervalMS    int64  `json:"intervalMs,omitempty"`
	TimeRange     struct {
		From int64 `json:"from"`
		To   int64 `json:"to"`
	} `json:"timeRange"`
	// JSON is the query model as the frontend sends it; RawJSON replaces it byte for byte.
	JSON    json.RawMessage `json:"json,omitempty"`
	RawJSON *string         `json:"rawJson,omitempty"`
}

// CheckFailure is a response the SDK rejected or a frame whose data type Grafana would not read.
type CheckFailure struct {
	Problems []string
}

func (e *CheckFailure) Error() string {
	return "the Grafana SDK judge rejected the response:\n  - " + strings.Join(e.Problems, "\n  - ")
}

func (s *Session) pluginContext(c *RequestContext) *pluginv2.PluginContext {
	pc := &pluginv2.PluginContext{PluginId: s.plugin.ID, PluginVersion: s.plugin.Info.Version, UserAgent: "Grafana/" + s.grafana}
	if c == nil {
		return pc
	}
	pc.OrgId = c.OrgID
	pc.GrafanaConfig = c.GrafanaConfig
	if c.User != nil {
		pc.User = &pluginv2.User{Login: c.User.Login, Name: c.User.Name, Email: c.User.Email, Role: c.User.Role}
	}
	if d := c.Datasource; d != nil {
		jsonData := []byte(d.JSONData)
		if len(jsonData) == 0 {
			jsonData = []byte("{}")
		}
		pc.DataSourceInstanceSettings = &pluginv2.DataSourceInstanceSettings{
			Id: d.ID, Uid: d.UID, Name: d.Name, Url: d.URL, JsonData: jsonData,
			DecryptedSecureJsonData: d.DecryptedSecureJSONData, LastUpdatedMS: d.LastUpdatedMS,
		}
	}
	return pc
}

// Do runs one call; the result is what Grafana's HTTP API would answer, as JSON.
func (s *Session) Do(r Request) (json.RawMessage, error) {
	timeout := 60 * time.Second
	if r.TimeoutMs > 0 {
		timeout = time.Duration(r.TimeoutMs) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	switch r.Call {
	case "query":
		return s.query(ctx, r)
	case "check-health":
		return s.checkHealth(ctx, r)
	case "resource":
		return s.callResource(ctx, r)
	case "metrics":
		return s.collectMetrics(ctx, r)
	case "shutdown":
		return json.Marshal(s.Shutdown())
	default:
		return nil, fmt.Errorf("unknown call %q (query, check-health, resource, metrics, shutdown)", r.Call)
	}
}

// query calls QueryData, decodes every frame with the SDK (backend.FromProto ->
// data.UnmarshalArrowFrames), checks the data types and answers with the SDK's JSON
// marshaller: the body of Grafana's POST /api/ds/query.
func (s *Session) query(ctx context.Context, r Request) (json.RawMessage, error) {
	req := &pluginv2.QueryDataRequest{PluginContext: s.pluginContext(r.Context), Headers: r.Headers}
	for _, q := range r.Queries {
		body := []byte(q.JSON)
		if q.RawJSON != nil {
			body = []byte(*q.RawJSON)
		}
		req.Queries = append(req.Queries, &pluginv2.DataQuery{
			RefId: q.RefID, QueryType: q.QueryType, MaxDataPoints: q.MaxDataPoints, IntervalMS: q.IntervalMS,
			TimeRange: &pluginv2.TimeRange{FromEpochMS: q.TimeRange.From, ToEpochMS: q.TimeRange.To}, Json: body,
		})
	}
	res, err := s.data.QueryData(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("QueryData: %w", err)
	}
	refIDs := make([]string, len(r.Queries))
	for i, q := range r.Queries {
		refIDs[i] = q.RefID
	}
	fromAlert := false
	for k, v := range r.Headers {
		if strings.EqualFold(k, "FromAlert") && v == "true" {
			fromAlert = true
		}
	}
	body, problems := JudgeQueryData(res, refIDs, fromAlert)
	if len(problems) > 0 {
		return body, &CheckFailure{Problems: problems}
	}
	return body, nil
}

// JudgeQueryData reads a QueryData answer as Grafana does: every frame decoded by the SDK,
// every data type checked as server-side expressions read it, then the SDK's JSON
// marshaller. body is nil when the SDK could not decode or marshal the answer.
func JudgeQueryData(res *pluginv2.QueryDataResponse, refIDs []string, fromAlert bool) (body json.RawMessage, problems []string) {
	for _, refID := range refIDs {
		if _, ok := res.Responses[refID]; !ok {
			problems = append(problems, fmt.Sprintf("%s: no response for this refId", refID))
		}
	}
	problems = append(problems, checkArrowEncoding(res)...)
	// Frames the Go reader cannot decode fail here, as they fail in Grafana.
	decoded, err := backend.FromProto().QueryDataResponse(res)
	if err != nil {
		return nil, append(problems, "backend.FromProto().QueryDataResponse: "+err.Error())
	}
	refs := make([]string, 0, len(res.Responses))
	for refID := range res.Responses {
		refs = append(refs, refID)
	}
	sort.Strings(refs)
	for _, refID := range refs {
		problems = append(problems, checkDataResponse(refID, res.Responses[refID], decoded.Responses[refID], fromAlert)...)
	}
	body, err = decoded.MarshalJSON()
	if err != nil {
		return nil, append(problems, "QueryDataResponse.MarshalJSON: "+err.Error())
	}
	return body, problems
}

// checkHealth answers as GET /api/datasources/uid/:uid/health does.
func (s *Session) checkHealth(ctx context.Context, r Request) (json.RawMessage, error) {
	res, err := s.diagnostics.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: s.pluginContext(r.Context), Headers: r.Headers})
	if err != nil {
		return nil, fmt.Errorf("CheckHealth: %w", err)
	}
	result := backend.FromProto().CheckHealthResponse(res)
	out := map[string]any{"status": result.Status.String(), "message": result.Message}
	if len(result.JSONDetails) > 0 {
		var details any
		if err := json.Unmarshal(result.JSONDetails, &details); err != nil {
			return nil, &CheckFailure{Problems: []string{"CheckHealth jsonDetails is not JSON: " + err.Error()}}
		}
		out["details"] = details
	}
	if result.Status == backend.HealthStatusUnknown {
		return nil, &CheckFailure{Problems: []string{"CheckHealth status is UNKNOWN: Grafana shows it as a failed health check"}}
	}
	return json.Marshal(out)
}

// callResource calls CallResource as GET|POST /api/datasources/uid/:uid/resources/<path> does:
// the first message carries status and headers, the body may come in several messages.
func (s *Session) callResource(ctx context.Context, r Request) (json.RawMessage, error) {
	method := r.Method
	if method == "" {
		method = "GET"
	}
	path := strings.TrimPrefix(r.Path, "/")
	u := url.URL{Path: path, RawQuery: r.Query}
	headers := map[string]*pluginv2.StringList{}
	for k, v := range r.Headers {
		headers[k] = &pluginv2.StringList{Values: []string{v}}
	}
	var body []byte
	if r.BodyText != nil {
		body = []byte(*r.BodyText)
	} else if len(r.Body) > 0 {
		body = []byte(r.Body)
		if _, ok := headers["Content-Type"]; !ok {
			headers["Content-Type"] = &pluginv2.StringList{Values: []string{"application/json"}}
		}
	}
	stream, err := s.resource.CallResource(ctx, &pluginv2.CallResourceRequest{
		PluginContext: s.pluginContext(r.Context), Path: path, Method: method, Url: u.String(), Headers: headers, Body: body,
	})
	if err != nil {
		return nil, fmt.Errorf("CallResource: %w", err)
	}
	var first *backend.CallResourceResponse
	var all []byte
	for {
		part, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("CallResource stream: %w", err)
		}
		converted := backend.FromProto().CallResourceResponse(part)
		if first == nil {
			first = converted
		}
		all = append(all, converted.Body...)
	}
	if first == nil {
		return nil, &CheckFailure{Problems: []string{"CallResource answered no message: Grafana answers 500"}}
	}
	out := map[string]any{"status": first.Status, "headers": first.Headers}
	var problems []string
	if first.Status < 100 || first.Status > 599 {
		problems = append(problems, fmt.Sprintf("CallResource status %d is not an HTTP status", first.Status))
	}
	contentType := strings.Join(first.Headers["Content-Type"], ",")
	var parsed any
	if strings.Contains(contentType, "json") && json.Unmarshal(all, &parsed) == nil {
		out["body"] = parsed
	} else {
		if strings.Contains(contentType, "json") {
			problems = append(problems, "CallResource says Content-Type "+contentType+" but the body is not JSON")
		}
		out["bodyText"] = string(all)
	}
	body, err = json.Marshal(out)
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return body, &CheckFailure{Problems: problems}
	}
	return body, nil
}

func (s *Session) collectMetrics(ctx context.Context, r Request) (json.RawMessage, error) {
	res, err := s.diagnostics.CollectMetrics(ctx, &pluginv2.CollectMetricsRequest{PluginContext: s.pluginContext(r.Context)})
	if err != nil {
		return nil, fmt.Errorf("CollectMetrics: %w", err)
	}
	result := backend.FromProto().CollectMetricsResponse(res)
	families, problems := ParsePrometheusText(result.PrometheusMetrics)
	if len(problems) > 0 {
		return nil, &CheckFailure{Problems: problems}
	}
	return json.Marshal(map[string]any{"prometheus": string(result.PrometheusMetrics), "families": families})
}

// MetricSample is one sample of a parsed family: its labels and value (counter, gauge,
// untyped), or the count and sum of a histogram or summary.
type MetricSample struct {
	Labels map[string]string `json:"labels"`
	Value  *float64          `json:"value,omitempty"`
	Count  *uint64           `json:"count,omitempty"`
	Sum    *float64          `json:"sum,omitempty"`
}

// MetricFamily is one family as Prometheus' own text parser (prometheus/common/expfmt) reads it.
type MetricFamily struct {
	Type    string         `json:"type"`
	Help    string         `json:"help"`
	Samples []MetricSample `json:"samples"`
}

// ParsePrometheusText parses a CollectMetrics answer with the parser Prometheus scrapes with.
// Empty text is no metrics; text that does not parse, or a family without HELP, is a problem.
func ParsePrometheusText(text []byte) (map[string]MetricFamily, []string) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := parser.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		return nil, []string{fmt.Sprintf("CollectMetrics: not Prometheus text format: %v", err)}
	}
	out := map[string]MetricFamily{}
	var problems []string
	for name, f := range parsed {
		if f.GetHelp() == "" {
			problems = append(problems, fmt.Sprintf("CollectMetrics: %s has no HELP", name))
		}
		family := MetricFamily{Type: strings.ToLower(f.GetType().String()), Help: f.GetHelp()}
		for _, m := range f.GetMetric() {
			sample := MetricSample{Labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				sample.Labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Counter != nil:
				v := m.GetCounter().GetValue()
				sample.Value = &v
			case m.Gauge != nil:
				v := m.GetGauge().GetValue()
				sample.Value = &v
			case m.Untyped != nil:
				v := m.GetUntyped().GetValue()
				sample.Value = &v
			case m.Histogram != nil:
				c, s := m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
				sample.Count, sample.Sum = &c, &s
			case m.Summary != nil:
				c, s := m.GetSummary().GetSampleCount(), m.GetSummary().GetSampleSum()
				sample.Count, sample.Sum = &c, &s
			}
			family.Samples = append(family.Samples, sample)
		}
		out[name] = family
	}
	sort.Strings(problems)
	return out, problems
}
