// Next.js (App Router): save as app/api/uploads/[...route]/route.ts. The app
// then uses startUploadApi = https://your.site/api/uploads/startUpload,
// getUploadUrlsApi = .../api/uploads/getUploadUrls, completeApi =
// .../api/uploads/complete (and abortApi = .../api/uploads/abort).
import { S3Client } from '@aws-sdk/client-s3';
import { createUploadBackend, fetchHandler } from 'react-native-s3-bg-uploader-backend';

const backend = createUploadBackend<string, Request>({
  s3: new S3Client({
    // Any S3-compatible store: R2, MinIO, Backblaze B2, Wasabi...
    endpoint: process.env.S3_ENDPOINT ?? 'https://ACCOUNT_ID.r2.cloudflarestorage.com',
    region: process.env.S3_REGION ?? 'auto',
    forcePathStyle: true,
  }),
  bucket: process.env.UPLOAD_BUCKET ?? 'uploads',
  authorize: async ({ headers }) => (await sessionUser(headers.get('authorization'))) ?? false,
  partSize: ({ fileSize }) => (fileSize > 1024 ** 3 ? 64 * 1024 ** 2 : 8 * 1024 ** 2),
  urlExpiresIn: 2 * 3600,
});

export const POST = fetchHandler(backend, { basePath: '/api/uploads' });

// Stand-in for your session lookup.
async function sessionUser(authorization: string | null): Promise<string | undefined> {
  return authorization?.startsWith('Bearer ') ? authorization.slice('Bearer '.length) : undefined;
}
