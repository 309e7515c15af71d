// Command grafana-host is the client side of a Grafana server for one backend plugin
// executable: it launches the plugin as Grafana's plugin manager does (hashicorp/go-plugin,
// gRPC, the versioned plugin set of grafana-plugin-sdk-go's grpcplugin, Grafana's
// environment), calls it with the SDK's client stubs, decodes and checks what it answers with
// the SDK, and prints what Grafana's HTTP API would answer. See README.md.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
)

type envFlags []string

func (e *envFlags) String() string { return strings.Join(*e, ",") }
func (e *envFlags) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("--env wants KEY=VALUE, got %q", v)
	}
	*e = append(*e, v)
	return nil
}

// Reply is one line on stdout in session mode.
type Reply struct {
	ID     json.RawMessage `json:"id,omitempty"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result,omitempty"`
	// Error is set when the call failed or the judge rejected the answer; Problems lists
	// each rejection (Result is still given when the SDK could decode the answer).
	Error    string   `json:"error,omitempty"`
	Problems []string `json:"problems,omitempty"`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("grafana-host", flag.ContinueOnError)
	fs.SetOutput(stderr)
	executable := fs.String("plugin", "", "the plugin executable (plugin.json must be next to it)")
	grafanaVersion := fs.String("grafana-version", "12.1.0", "GF_VERSION given to the plugin")
	pluginLog := fs.String("plugin-log", "", "append the plugin's log (relayed by go-plugin, JSON lines) to this file; default: discarded")
	var env envFlags
	fs.Var(&env, "env", "KEY=VALUE added to the plugin's environment (repeatable)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: grafana-host --plugin <executable> [--grafana-version V] [--env K=V]... [--plugin-log FILE] [CALL]
       grafana-host decode    (no plugin: judges the Arrow frames of {"refId", "fromAlert", "frames": [base64]} on stdin)

With CALL (query, check-health, resource, metrics, shutdown): reads one JSON request from
stdin, prints the result, stops the plugin; exit 1 when the call fails or the SDK rejects
the answer (problems on stderr), 2 on usage errors.
Without CALL: session mode, one JSON request per line on stdin ({"id": .., "call": .., ...}),
one JSON reply per line on stdout ({"id", "ok", "result", "error", "problems"}); the plugin
is stopped (GRPCController/Shutdown) at the end of stdin.
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 1 && fs.Arg(0) == "decode" {
		return decode(stdin, stdout, stderr)
	}
	if *executable == "" || fs.NArg() > 1 {
		fs.Usage()
		return 2
	}
	var logOut io.Writer
	if *pluginLog != "" {
		f, err := os.OpenFile(*pluginLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(stderr, "grafana-host:", err)
			return 2
		}
		defer f.Close()
		logOut = f
	}
	session, err := Launch(LaunchOptions{Executable: *executable, GrafanaVersion: *grafanaVersion, Env: env, PluginLog: logOut})
	if err != nil {
		fmt.Fprintln(stderr, "grafana-host:", err)
		return 1
	}
	defer session.Shutdown()
	if fs.NArg() == 1 {
		return oneCall(session, fs.Arg(0), stdin, stdout, stderr)
	}
	return serve(session, stdin, stdout, stderr)
}

// decode judges frames given on stdin, without a plugin: {"refId": "A", "fromAlert": false,
// "frames": ["<base64 Arrow IPC file>", ...]}, read as one DataResponse with status 200.
func decode(stdin io.Reader, stdout, stderr io.Writer) int {
	var req struct {
		RefID     string   `json:"refId"`
		FromAlert bool     `json:"fromAlert"`
		Frames    [][]byte `json:"frames"`
	}
	if err := json.NewDecoder(stdin).Decode(&req); err != nil {
		fmt.Fprintln(stderr, "grafana-host: the request on stdin:", err)
		return 2
	}
	res := &pluginv2.QueryDataResponse{Responses: map[string]*pluginv2.DataResponse{req.RefID: {Frames: req.Frames, Status: 200}}}
	body, problems := JudgeQueryData(res, []string{req.RefID}, req.FromAlert)
	if body != nil {
		fmt.Fprintln(stdout, string(body))
	}
	if len(problems) > 0 {
		fmt.Fprintln(stderr, "grafana-host:", (&CheckFailure{Problems: problems}).Error())
		return 1
	}
	return 0
}

func oneCall(s *Session, call string, stdin io.Reader, stdout, stderr io.Writer) int {
	var req Request
	if call != "shutdown" && call != "metrics" {
		if err := json.NewDecoder(stdin).Decode(&req); err != nil {
			fmt.Fprintln(stderr, "grafana-host: the request on stdin:", err)
			return 2
		}
	}
	req.Call = call
	result, err := s.Do(req)
	if result != nil {
		fmt.Fprintln(stdout, string(result))
	}
	if err != nil {
		fmt.Fprintln(stderr, "grafana-host:", err)
		return 1
	}
	return 0
}

func serve(s *Session, stdin io.Reader, stdout, stderr io.Writer) int {
	in := bufio.NewScanner(stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := json.NewEncoder(stdout)
	for in.Scan() {
		line := strings.TrimSpace(in.Text())
		if line == "" {
			continue
		}
		var req Request
		reply := Reply{}
		if err := json.Unmarshal([]byte(line), &req); err != nil {
			reply.Error = "the request is not JSON: " + err.Error()
		} else {
			reply.ID = req.ID
			result, err := s.Do(req)
			reply.Result = result
			reply.OK = err == nil
			if err != nil {
				reply.Error = err.Error()
				var failure *CheckFailure
				if errors.As(err, &failure) {
					reply.Problems = failure.Problems
				}
			}
		}
		if err := out.Encode(reply); err != nil {
			fmt.Fprintln(stderr, "grafana-host:", err)
			return 1
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(stderr, "grafana-host: stdin:", err)
		return 1
	}
	return 0
}
