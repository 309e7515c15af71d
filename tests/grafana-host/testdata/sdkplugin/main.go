// A backend plugin served by grafana-plugin-sdk-go's own backend.Serve, for the host's tests:
// if the host launches and reads it, the host speaks the handshake and plugin set the SDK
// serves. Each refId picks an answer: "good" (a valid timeseries-multi series), "unsorted"
// (time not ascending) and "numbers" (numeric-multi, labelled with the user and role).
package main

import (
	"context"
	"net/http"
	"os"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

type plugin struct{}

func series(refID string, times ...int64) *data.Frame {
	ts := make([]time.Time, len(times))
	values := make([]float64, len(times))
	for i, t := range times {
		ts[i] = time.UnixMilli(t).UTC()
		values[i] = float64(i)
	}
	f := data.NewFrame("bps", data.NewField("time", nil, ts), data.NewField("bps", data.Labels{"device": "r1"}, values))
	f.RefID = refID
	return f.SetMeta(&data.FrameMeta{Type: data.FrameTypeTimeSeriesMulti, TypeVersion: data.FrameTypeVersion{0, 1}})
}

func (plugin) QueryData(_ context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	res := backend.NewQueryDataResponse()
	for _, q := range req.Queries {
		switch q.RefID {
		case "good":
			res.Responses[q.RefID] = backend.DataResponse{Status: backend.StatusOK, Frames: data.Frames{series(q.RefID, 1000, 2000)}}
		case "unsorted":
			res.Responses[q.RefID] = backend.DataResponse{Status: backend.StatusOK, Frames: data.Frames{series(q.RefID, 2000, 1000)}}
		case "numbers":
			f := data.NewFrame("n", data.NewField("n", data.Labels{"user": req.PluginContext.User.Login, "role": req.PluginContext.User.Role}, []float64{42}))
			f.RefID = q.RefID
			f.SetMeta(&data.FrameMeta{Type: data.FrameTypeNumericMulti, TypeVersion: data.FrameTypeVersion{0, 1}})
			res.Responses[q.RefID] = backend.DataResponse{Status: backend.StatusOK, Frames: data.Frames{f}}
		}
	}
	return res, nil
}

func (plugin) CheckHealth(_ context.Context, req *backend.CheckHealthRequest) (*backend.CheckHealthResult, error) {
	ds := req.PluginContext.DataSourceInstanceSettings
	return &backend.CheckHealthResult{
		Status:      backend.HealthStatusOk,
		Message:     "uid " + ds.UID + " secret " + ds.DecryptedSecureJSONData["token"] + " grafana " + os.Getenv("GF_VERSION"),
		JSONDetails: ds.JSONData,
	}, nil
}

func (plugin) CallResource(_ context.Context, req *backend.CallResourceRequest, sender backend.CallResourceResponseSender) error {
	return sender.Send(&backend.CallResourceResponse{
		Status:  http.StatusAccepted,
		Headers: map[string][]string{"Content-Type": {"application/json"}},
		Body:    []byte(`{"method":"` + req.Method + `","url":"` + req.URL + `","body":` + string(req.Body) + `}`),
	})
}

func main() {
	p := plugin{}
	if err := backend.Serve(backend.ServeOpts{QueryDataHandler: p, CheckHealthHandler: p, CallResourceHandler: p}); err != nil {
		os.Exit(1)
	}
}
