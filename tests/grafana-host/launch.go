package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend/grpcplugin"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
)

// handshake is what backend.Serve (grpcplugin.Serve) expects; the SDK keeps its own copy
// unexported, so it is rebuilt here from the SDK's exported constants.
var handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  grpcplugin.ProtocolVersion,
	MagicCookieKey:   grpcplugin.MagicCookieKey,
	MagicCookieValue: grpcplugin.MagicCookieValue,
}

// pluginSet is the versioned plugin set Grafana's plugin manager dispenses from a backend
// plugin: the client halves of the SDK's grpcplugin plugins, under the keys grpcplugin.Serve
// registers them with.
func pluginSet() map[int]goplugin.PluginSet {
	return map[int]goplugin.PluginSet{
		grpcplugin.ProtocolVersion: {
			"diagnostics": &grpcplugin.DiagnosticsGRPCPlugin{},
			"resource":    &grpcplugin.ResourceGRPCPlugin{},
			"data":        &grpcplugin.DataGRPCPlugin{},
			"stream":      &grpcplugin.StreamGRPCPlugin{},
		},
	}
}

// pluginJSON is the part of plugin.json (next to the executable, as Grafana finds it) the host uses.
type pluginJSON struct {
	ID   string `json:"id"`
	Info struct {
		Version string `json:"version"`
	} `json:"info"`
}

func readPluginJSON(executable string) (pluginJSON, error) {
	var p pluginJSON
	b, err := os.ReadFile(filepath.Join(filepath.Dir(executable), "plugin.json"))
	if err != nil {
		return p, fmt.Errorf("plugin.json next to the executable: %w", err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("plugin.json: %w", err)
	}
	return p, nil
}

// grafanaEnv is the environment an open source Grafana gives a backend plugin (GF_VERSION,
// GF_EDITION) plus GF_PLUGIN_VERSION, which the SDK reads; other setups add more (extra).
// go-plugin adds the magic cookie, PLUGIN_PROTOCOL_VERSIONS and the port range.
func grafanaEnv(grafanaVersion, pluginVersion string, extra []string) []string {
	env := []string{
		"GF_VERSION=" + grafanaVersion,
		"GF_EDITION=Open Source",
		"GF_PLUGIN_VERSION=" + pluginVersion,
	}
	return append(env, extra...)
}

// Session is one running plugin process and the clients Grafana uses to call it.
type Session struct {
	client      *goplugin.Client
	cmd         *exec.Cmd
	plugin      pluginJSON
	grafana     string
	data        grpcplugin.DataClient
	diagnostics grpcplugin.DiagnosticsClient
	resource    grpcplugin.ResourceClient
	stdout      *lockedBuffer
	mu          sync.Mutex
	stopped     *ShutdownResult
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type LaunchOptions struct {
	Executable     string
	GrafanaVersion string
	// Env is added to Grafana's environment (KEY=VALUE)
	Env []string
	// PluginLog receives the plugin's stderr log lines as go-plugin relays them
	PluginLog io.Writer
}

// Launch starts the executable as Grafana's plugin manager does and dispenses its services.
func Launch(o LaunchOptions) (*Session, error) {
	executable, err := filepath.Abs(o.Executable)
	if err != nil {
		return nil, err
	}
	p, err := readPluginJSON(executable)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(executable)
	// Grafana starts plugins in its own working directory, not the plugin's.
	cmd.Dir = os.TempDir()
	cmd.Env = grafanaEnv(o.GrafanaVersion, p.Info.Version, o.Env)
	stdout := &lockedBuffer{}
	logOut := o.PluginLog
	if logOut == nil {
		logOut = io.Discard
	}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		Cmd:              cmd,
		HandshakeConfig:  handshake,
		VersionedPlugins: pluginSet(),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		// Grafana does not pass its own environment on to plugins.
		SkipHostEnv:  true,
		StartTimeout: 60 * time.Second,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name: "plugin." + p.ID, Output: logOut, Level: hclog.Trace, JSONFormat: true,
		}),
		// anything the plugin prints on stdout after the handshake
		SyncStdout: stdout,
	})
	s := &Session{client: client, cmd: cmd, plugin: p, grafana: o.GrafanaVersion, stdout: stdout}
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("go-plugin could not start %s: %w", executable, err)
	}
	if err := s.dispenseAll(rpc); err != nil {
		client.Kill()
		return nil, err
	}
	return s, nil
}

func (s *Session) dispenseAll(rpc goplugin.ClientProtocol) error {
	dispense := func(name string) (any, error) {
		v, err := rpc.Dispense(name)
		if err != nil {
			return nil, fmt.Errorf("dispense %q: %w", name, err)
		}
		return v, nil
	}
	v, err := dispense("data")
	if err != nil {
		return err
	}
	s.data = v.(grpcplugin.DataClient)
	if v, err = dispense("diagnostics"); err != nil {
		return err
	}
	s.diagnostics = v.(grpcplugin.DiagnosticsClient)
	if v, err = dispense("resource"); err != nil {
		return err
	}
	s.resource = v.(grpcplugin.ResourceClient)
	return rpc.Ping()
}

// ShutdownResult says how the plugin ended after go-plugin's Kill: GRPCController/Shutdown,
// then up to 2 s for the process to exit by itself before it is killed.
type ShutdownResult struct {
	ExitCode int    `json:"exitCode"`
	Graceful bool   `json:"graceful"`
	Ms       int64  `json:"ms"`
	State    string `json:"state"`
	// Stdout is anything printed after the handshake line (go-plugin relays it; Grafana logs it)
	Stdout string `json:"stdout"`
}

// Shutdown stops the plugin as Grafana does (client.Kill). Idempotent.
func (s *Session) Shutdown() ShutdownResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped != nil {
		return *s.stopped
	}
	started := time.Now()
	s.client.Kill()
	r := ShutdownResult{ExitCode: -1, Ms: time.Since(started).Milliseconds(), Stdout: s.stdout.String()}
	if st := s.cmd.ProcessState; st != nil {
		r.ExitCode = st.ExitCode()
		r.State = st.String()
		// exited by itself (not killed) with 0, before go-plugin's 2 s grace period ran out
		r.Graceful = st.Exited() && st.ExitCode() == 0
	}
	s.stopped = &r
	return r
}
