/**
 * gRPC service definitions of the plugin protocol, loaded from the .proto files in ./proto.
 * The single-executable build cannot read files next to the module, so the build embeds the
 * proto sources as `__IPERF3_EMBEDDED_PROTOS__`; in development they are read from disk.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

declare const __IPERF3_EMBEDDED_PROTOS__: Record<string, string> | undefined;

export const PROTO_FILES = ['backend.proto', 'health.proto', 'grpc_controller.proto'] as const;

/** The text of every proto file, by file name. */
export function protoSources(): Record<string, string> {
  if (typeof __IPERF3_EMBEDDED_PROTOS__ !== 'undefined') return __IPERF3_EMBEDDED_PROTOS__;
  const dir = new URL('./proto/', import.meta.url);
  return Object.fromEntries(PROTO_FILES.map((f) => [f, readFileSync(new URL(f, dir), 'utf8')]));
}

/** Field names as written in the .proto files (camelCase already), int64 as JS numbers. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

export interface PluginProtos {
  Data: grpc.ServiceClientConstructor;
  Diagnostics: grpc.ServiceClientConstructor;
  Resource: grpc.ServiceClientConstructor;
  Health: grpc.ServiceClientConstructor;
  GRPCController: grpc.ServiceClientConstructor;
}

export function loadPluginProtos(): PluginProtos {
  const root = new protobuf.Root();
  for (const source of Object.values(protoSources())) protobuf.parse(source, root, { keepCase: true });
  const definition = protoLoader.fromJSON(root.toJSON(), PROTO_LOADER_OPTIONS);
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    pluginv2: Record<'Data' | 'Diagnostics' | 'Resource', grpc.ServiceClientConstructor>;
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
    plugin: { GRPCController: grpc.ServiceClientConstructor };
  };
  return {
    Data: loaded.pluginv2.Data,
    Diagnostics: loaded.pluginv2.Diagnostics,
    Resource: loaded.pluginv2.Resource,
    Health: loaded.grpc.health.v1.Health,
    GRPCController: loaded.plugin.GRPCController,
  };
}
