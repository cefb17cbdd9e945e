// `oie run` started by an end-to-end test: its address, once it has written it.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The base URL of the `oie run` whose data directory is `<dir>/data` (it writes
 * `server.addr` when it listens); throws after 20 s. */
export async function daemonBase(dir: string): Promise<string> {
  const addrFile = join(dir, 'data', 'server.addr');
  const start = Date.now();
  while (!existsSync(addrFile) || !readFileSync(addrFile, 'utf8')) {
    if (Date.now() - start > 20000) throw new Error('oie did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  return `http://${readFileSync(addrFile, 'utf8')}`;
}
