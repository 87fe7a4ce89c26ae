// Adapter for fetch-style handlers (Request -> Response): Next.js route
// handlers, Hono, Deno, Bun, Cloudflare-style workers running Node APIs.
import { MAX_BODY_BYTES, type UploadBackend } from './backend.js';

export interface FetchHandlerOptions {
  /**
   * The URL path the four routes hang under, e.g. `/api/uploads` for a
   * Next.js `app/api/uploads/[...route]/route.ts`. Default: the part of the
   * path before `/startUpload`, `/getUploadUrls`, `/complete/` or `/abort/`.
   */
  basePath?: string;
}

const ROUTE_START = /\/(startUpload|getUploadUrls)$|\/(complete|abort)\//;

function routePath(pathname: string, basePath: string | undefined): string | undefined {
  if (basePath !== undefined) {
    const base = basePath.replace(/\/+$/, '');
    if (!pathname.startsWith(base + '/')) return undefined;
    return pathname.slice(base.length);
  }
  const found = ROUTE_START.exec(pathname);
  return found ? pathname.slice(found.index) : undefined;
}

function json(status: number, value: unknown): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { 'content-type': 'application/json' },
  });
}

/**
 * The backend as `(request) => Promise<Response>`. Next.js:
 * `export const POST = fetchHandler(backend, { basePath: "/api/uploads" })`;
 * Hono: `app.post("/uploads/*", (c) => handler(c.req.raw))`.
 */
export function fetchHandler(backend: UploadBackend<Request>, options: FetchHandlerOptions = {}) {
  return async (request: Request): Promise<Response> => {
    const path = routePath(new URL(request.url).pathname, options.basePath);
    if (path === undefined) return json(404, { error: 'no such endpoint' });
    const declared = Number(request.headers.get('content-length') ?? '0');
    if (declared > MAX_BODY_BYTES) return json(413, { error: 'the request body is too large' });
    let body: Uint8Array;
    try {
      body = new Uint8Array(await request.arrayBuffer());
    } catch {
      return json(400, { error: 'could not read the request body' });
    }
    if (body.byteLength > MAX_BODY_BYTES)
      return json(413, { error: 'the request body is too large' });
    const out = await backend.handle({
      method: request.method,
      path,
      headers: request.headers,
      body,
      request,
    });
    return new Response(out.status === 204 ? null : out.body, {
      status: out.status,
      headers: out.headers,
    });
  };
}
