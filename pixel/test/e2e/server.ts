// A tiny site serving the built pixel, and a collector that validates every request against
// the ingest contract (contract/ingest.schema.json).

import { readFileSync } from 'node:fs';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import Ajv2020 from 'ajv/dist/2020.js';

const root = new URL('../../', import.meta.url);
const schema = JSON.parse(readFileSync(new URL('../contract/ingest.schema.json', root), 'utf8'));
const validate = new Ajv2020({ allErrors: true, strict: false }).compile(schema);

export interface Received {
  raw: string;
  body: { v: number; events: Array<Record<string, any>> };
}

export function page(options: { consent?: 'required'; extraHead?: string; attrs?: string } = {}): string {
  const consent = (options.consent ? ` data-consent="${options.consent}"` : '') + (options.attrs ? ` ${options.attrs}` : '');
  return `<!doctype html><html><head><title>Acme pricing</title>${options.extraHead || ''}
<script>window.oie = window.oie || function(){(oie.q = oie.q || []).push(arguments)}</script>
<script async src="/oie.js" data-endpoint="/track"${consent}></script></head>
<body style="margin:0">
<h1>Pricing</h1>
<a id="demo-link" class="btn primary" href="#demo">Book   a
  demo</a>
<button id="cta" class="cta">${'Start your free trial now '.repeat(8)}</button>
<form id="demo-form"><input name="email" type="email"><input name="company"><button type="submit">Send</button></form>
<video id="tour" src="/tour.mp4"></video>
<div style="height:5000px"></div>
</body></html>`;
}

export class Site {
  server!: Server;
  base = '';
  received: Received[] = [];
  invalid: { raw: string; errors: unknown }[] = [];
  attempts = 0;
  down = false;
  html = page();

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  events(): Array<Record<string, any>> {
    return this.received.flatMap((r) => r.body.events);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url || '/', this.base);
    if (req.method === 'GET' && url.pathname === '/oie.js') {
      res.writeHead(200, { 'content-type': 'application/javascript' });
      res.end(readFileSync(new URL('dist/oie.js', root)));
    } else if (req.method === 'POST' && url.pathname === '/track') {
      this.attempts++;
      if (this.down) {
        req.socket.destroy();
        return;
      }
      let raw = '';
      req.on('data', (c) => (raw += c));
      req.on('end', () => {
        let body: unknown = null;
        try {
          body = JSON.parse(raw);
        } catch {
          /* reported as invalid below */
        }
        // Half a surrogate pair (`"\ud83d"`): the servers read it as U+FFFD (`oie run` used to
        // refuse the whole batch); the pixel never sends one, refused here to prove it.
        const halfPair = /\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f])|(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2}/i.test(raw);
        if (body !== null && !halfPair && validate(body)) {
          this.received.push({ raw, body: body as Received['body'] });
          res.writeHead(202, { 'content-type': 'application/json' });
          res.end('{"success":true}');
        } else {
          this.invalid.push({ raw, errors: validate.errors });
          res.writeHead(400);
          res.end('invalid');
        }
      });
    } else if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(this.html);
    } else {
      res.writeHead(404);
      res.end();
    }
  }
}
