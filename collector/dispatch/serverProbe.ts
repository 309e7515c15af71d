import { connect as tcpConnect } from 'node:net';

export interface ServerCheck {
  reachable: boolean;
  error?: string;
}

/** A TCP connection to an iperf3 port from the collector (a hint: devices connect from elsewhere). */
export function probeServer(host: string, port: number, timeoutMs = 2000): Promise<ServerCheck> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port, timeout: timeoutMs });
    const done = (result: ServerCheck) => {
      socket.destroy();
      resolve(result);
    };
    socket.once('connect', () => done({ reachable: true }));
    socket.once('timeout', () => done({ reachable: false, error: `no answer within ${timeoutMs} ms` }));
    socket.once('error', (err: NodeJS.ErrnoException) => done({ reachable: false, error: err.code ?? err.message }));
  });
}
