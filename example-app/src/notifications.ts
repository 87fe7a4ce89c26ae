import { PermissionsAndroid, Platform } from 'react-native';

/**
 * Android 13+ shows the upload progress notification only once the user has
 * allowed notifications (README, "What the app must add"). Uploads run either
 * way, so a refusal is not an error.
 */
export async function askForNotificationPermission(): Promise<void> {
  if (Platform.OS !== 'android' || Platform.Version < 33) {
    return;
  }
  await PermissionsAndroid.request(PermissionsAndroid.PERMISSIONS.POST_NOTIFICATIONS);
}
