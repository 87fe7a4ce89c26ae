// Adapter for Node's http servers and everything built on them (Express,
// Connect, Fastify's raw handlers): (req, res, next) middleware.
import { MAX_BODY_BYTES, type UploadBackend } from './backend.js';

/** What the adapter needs of a request: Node's IncomingMessage has it, so does Express's. */
export interface NodeRequestLike extends AsyncIterable<unknown> {
  method?: string | undefined;
  url?: string | undefined;
  headers: Record<string, string | string[] | undefined>;
  /** Express: the path relative to where the middleware is mounted. */
  path?: string;
  /** Set when a body parser already read the body. */
  body?: unknown;
  readableEnded?: boolean;
}

/** What the adapter needs of a response: Node's ServerResponse has it. */
export interface NodeResponseLike {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body?: string): unknown;
}

export type NextFunction = (err?: unknown) => void;

class BodyTooLarge extends Error {}

async function readBody(req: NodeRequestLike): Promise<unknown> {
  // A body parser ran first (express.json(), express.raw(), ...): take what it made.
  if (req.body !== undefined || req.readableEnded) return req.body;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk as Uint8Array);
    size += buf.length;
    if (size > MAX_BODY_BYTES) throw new BodyTooLarge();
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/**
 * The backend as middleware: `app.use("/uploads", nodeHandler(backend))`
 * serves `/uploads/startUpload`, `/uploads/getUploadUrls`,
 * `/uploads/complete/...` and `/uploads/abort/...`. Other paths go to
 * `next` (or get 404 without one), so it can share a router.
 */
export function nodeHandler<Req extends NodeRequestLike>(backend: UploadBackend<Req>) {
  return (req: Req, res: NodeResponseLike, next?: NextFunction): void => {
    const path = req.path ?? new URL(req.url ?? '/', 'http://localhost').pathname;
    if (!backend.matches(path) && next) {
      next();
      return;
    }
    const send = (status: number, headers: Record<string, string>, body: string) => {
      res.statusCode = status;
      for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
      res.end(body);
    };
    void (async () => {
      let body: unknown;
      try {
        body = await readBody(req);
      } catch (err) {
        const tooLarge = err instanceof BodyTooLarge;
        // The rest of the body is not read: the connection cannot be reused.
        const headers = { 'content-type': 'application/json', connection: 'close' };
        send(
          tooLarge ? 413 : 400,
          headers,
          JSON.stringify({
            error: tooLarge ? 'the request body is too large' : 'could not read the request body',
          }),
        );
        return;
      }
      const out = await backend.handle({
        method: req.method ?? 'GET',
        path,
        headers: req.headers,
        body,
        request: req,
      });
      send(out.status, out.headers, out.body);
    })().catch((err: unknown) => {
      // handle() answers every failure itself; this is a bug in the adapter.
      if (next) next(err);
      else
        send(
          500,
          { 'content-type': 'application/json' },
          JSON.stringify({ error: 'internal error in the upload backend' }),
        );
    });
  };
}

/** The same middleware under the name Express users look for. */
export const expressHandler = nodeHandler;
