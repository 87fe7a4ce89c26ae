// An Express server with the four upload routes under /uploads, on AWS S3.
import { S3Client } from '@aws-sdk/client-s3';
import express from 'express';
import {
  UploadBackendError,
  createUploadBackend,
  expressHandler,
} from 'react-native-s3-bg-uploader-backend';

// Stand-in for your own session check.
function userFromToken(header: string | null): string | undefined {
  return header === `Bearer ${process.env.APP_TOKEN}` ? 'demo-user' : undefined;
}

const backend = createUploadBackend({
  s3: new S3Client({ region: process.env.AWS_REGION ?? 'eu-west-1' }),
  bucket: process.env.UPLOAD_BUCKET ?? 'my-upload-bucket',
  authorize: ({ headers, key }) => {
    const user = userFromToken(headers.get('authorization'));
    // 401: the app pauses its uploads until it has new headers.
    if (!user) return false;
    // Later calls name a key: only the caller's own folder.
    if (key !== undefined && !key.startsWith(`uploads/${user}/`))
      throw new UploadBackendError(403, 'not your upload');
    return user;
  },
  // One folder per user, then the default key's content hash and a unique part.
  objectKey: ({ auth, fileHash, fileName }) =>
    `${auth}/${fileHash}/${Date.now()}-${fileName.replace(/[/\\]/g, '_')}`,
  // What the app receives when the upload is complete.
  completeBody: ({ key, etag }) => ({ key, etag, url: `https://cdn.example.com/${key}` }),
});

const app = express();
app.use('/uploads', expressHandler(backend));
app.listen(3000, () => console.log('upload backend on http://localhost:3000/uploads'));
