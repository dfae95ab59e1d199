// server.mjs — starts a real `quarrel serve` for the Node tests and stops it.
// QUARREL_BIN and QUARREL_SHARED come from ctest (tests/cli/node.sh); the server binds
// 127.0.0.1 on a free port (--port 0) and its port is read from its "listening on" line.
// Its stderr (the log) is kept in server.log for checks on what was logged.
import { spawn } from 'node:child_process';
import path from 'node:path';

export const BIN = process.env.QUARREL_BIN ?? 'build/quarrel';
export const SHARED = process.env.QUARREL_SHARED ?? '../shared';
export const MODEL = path.join(SHARED, 'models', 'stories260K.gguf');

export async function startServer(extra = [], env = {}) {
  const proc = spawn(BIN, ['serve', '-m', MODEL, '--port', '0', '-t', '2', ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
  const srv = { proc, log: '', port: 0 };
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => { srv.log += d; });
  srv.port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 60 s:\n${srv.log}`)), 60000);
    const onData = () => {
      const m = srv.log.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) { clearTimeout(timer); proc.stderr.off('data', onData); resolve(Number(m[1])); }
    };
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}):\n${srv.log}`)); });
  });
  srv.url = `http://127.0.0.1:${srv.port}`;
  return srv;
}

// SIGTERM, then the exit status (0 expected); SIGKILL after 15 s.
export function stopServer(srv) {
  return new Promise((resolve) => {
    if (srv.proc.exitCode !== null) { resolve(srv.proc.exitCode); return; }
    const timer = setTimeout(() => srv.proc.kill('SIGKILL'), 15000);
    srv.proc.removeAllListeners('exit');
    srv.proc.on('exit', (code, sig) => { clearTimeout(timer); resolve(code ?? sig); });
    srv.proc.kill('SIGTERM');
  });
}
