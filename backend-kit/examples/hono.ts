// Hono (Node, Bun, Deno): the fetch handler on a wildcard route.
import { S3Client } from '@aws-sdk/client-s3';
import { Hono } from 'hono';
import { createUploadBackend, fetchHandler } from 'react-native-s3-bg-uploader-backend';

const backend = createUploadBackend<unknown, Request>({
  s3: new S3Client({ region: 'us-east-1' }),
  bucket: 'my-upload-bucket',
});
const uploads = fetchHandler(backend, { basePath: '/uploads' });

const app = new Hono();
app.post('/uploads/*', c => uploads(c.req.raw));
export default app;
