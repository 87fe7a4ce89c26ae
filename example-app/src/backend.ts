import { NativeModules, Platform } from 'react-native';
import type { UploaderConfig } from 'react-native-s3-bg-uploader';

/** Port of `s3bgu serve --listen 0.0.0.0:8080`, the reference backend. */
export const BACKEND_PORT = 8080;

/**
 * The machine the app was loaded from: in development Metro serves the
 * bundle from the dev machine, which is where `s3bgu serve` runs too.
 */
function devMachineHost(): string | null {
  const constants = NativeModules.SourceCode?.getConstants?.() as
    | { scriptURL?: unknown }
    | undefined;
  const url = constants?.scriptURL;
  const match = typeof url === 'string' ? /^https?:\/\/([^/:?#]+)/.exec(url) : null;
  return match?.[1] ?? null;
}

/**
 * Default backend: the dev machine's address when Metro's is known, else
 * the emulator's alias for the host (Android) or the host itself (iOS
 * simulator). A phone on Wi-Fi needs the dev machine's LAN address.
 */
export function defaultBackendUrl(): string {
  const host = devMachineHost() ?? (Platform.OS === 'android' ? '10.0.2.2' : 'localhost');
  return `http://${host}:${BACKEND_PORT}`;
}

/** The reference backend's routes under one base URL. */
export function configFor(baseUrl: string, token: string): UploaderConfig {
  const base = baseUrl.trim().replace(/\/+$/, '');
  return {
    startUploadApi: `${base}/startUpload`,
    getUploadUrlsApi: `${base}/getUploadUrls`,
    completeApi: `${base}/complete`,
    abortApi: `${base}/abort`,
    headers: token.trim() ? { Authorization: `Bearer ${token.trim()}` } : {},
    maxParallelParts: 4,
    network: 'any',
    notification: {
      title: 'Uploading {completedFiles}/{totalFiles} files',
      text: '{uploadedSize} of {totalSize} ({percentage}%)',
    },
  };
}
