export {
  createUploadBackend,
  EMPTY_FILE_UPLOAD_ID,
  MAX_BODY_BYTES,
  type AuthorizeContext,
  type BackendRequest,
  type BackendResponse,
  type CompleteContext,
  type HeaderSource,
  type Operation,
  type PartSizeContext,
  type RequestContext,
  type RoutedRequest,
  type StartContext,
  type UploadBackend,
  type UploadBackendOptions,
} from './backend.js';
export { UploadBackendConfigError, UploadBackendError } from './errors.js';
export { EMPTY_CONTENT_HASH } from './keys.js';
export {
  expressHandler,
  nodeHandler,
  type NextFunction,
  type NodeRequestLike,
  type NodeResponseLike,
} from './node.js';
export { fetchHandler, type FetchHandlerOptions } from './fetch.js';
