import { Pressable, StyleSheet, Text, View } from 'react-native';
import { ACTIVE_STATES, type Upload, type UploadState } from 'react-native-s3-bg-uploader';
import { ProgressBar } from './ProgressBar';
import { formatBytes, fraction, percent } from './format';

const STATE_COLORS: Record<UploadState, string> = {
  PENDING: '#8a8f98',
  INITIALIZED: '#8a8f98',
  RUNNING: '#2f6fdf',
  PAUSED: '#c98a00',
  COMPLETED: '#1f9d55',
  FAILED: '#d64545',
  CANCELLED: '#5c6370',
};

interface Props {
  upload: Upload;
  onPause: (id: number) => void;
  onResume: (id: number) => void;
  onCancel: (id: number) => void;
}

/** One file: name, state, progress bar, bytes and parts, its error, and its buttons. */
export function UploadRow({ upload, onPause, onResume, onCancel }: Props) {
  const color = STATE_COLORS[upload.state];
  const done = fraction(upload.uploadedBytes, upload.size, upload.state === 'COMPLETED');
  const active = ACTIVE_STATES.includes(upload.state);
  const resumable = upload.state === 'PAUSED' || upload.state === 'FAILED';
  const cancellable = upload.state !== 'COMPLETED' && upload.state !== 'CANCELLED';
  return (
    <View style={styles.row} testID={`upload-${upload.id}`}>
      <View style={styles.header}>
        <Text style={styles.name} numberOfLines={1}>
          {upload.fileName}
        </Text>
        {/* testID: the e2e flows (example-app/e2e) wait on this file's state. */}
        <Text style={[styles.state, { color }]} testID={`state-${upload.fileName}`}>
          {upload.state}
        </Text>
      </View>
      <ProgressBar value={done} color={color} />
      <Text style={styles.detail}>
        {formatBytes(upload.uploadedBytes)} / {formatBytes(upload.size)} ({percent(done)})
        {upload.partsTotal > 0 ? ` · parts ${upload.partsDone}/${upload.partsTotal}` : ''}
        {` · #${upload.id} · ${upload.transferId}`}
      </Text>
      {upload.error ? (
        <Text style={styles.error}>
          {upload.error.code}: {upload.error.message}
        </Text>
      ) : null}
      <View style={styles.buttons}>
        {active ? <SmallButton label="Pause" onPress={() => onPause(upload.id)} /> : null}
        {resumable ? <SmallButton label="Resume" onPress={() => onResume(upload.id)} /> : null}
        {cancellable ? <SmallButton label="Cancel" onPress={() => onCancel(upload.id)} /> : null}
      </View>
    </View>
  );
}

export function SmallButton({
  label,
  onPress,
  testID,
}: {
  label: string;
  onPress: () => void;
  testID?: string;
}) {
  return (
    <Pressable
      accessibilityRole="button"
      testID={testID}
      onPress={onPress}
      style={({ pressed }) => [styles.button, pressed && styles.pressed]}
    >
      <Text style={styles.buttonText}>{label}</Text>
    </Pressable>
  );
}

const styles = StyleSheet.create({
  row: { paddingVertical: 10, borderBottomWidth: StyleSheet.hairlineWidth, borderColor: '#ccd' },
  header: { flexDirection: 'row', justifyContent: 'space-between', marginBottom: 6 },
  name: { flex: 1, fontWeight: '600', marginRight: 8 },
  state: { fontWeight: '700', fontSize: 12 },
  detail: { color: '#555b66', fontSize: 12, marginTop: 4 },
  error: { color: '#d64545', fontSize: 12, marginTop: 4 },
  buttons: { flexDirection: 'row', marginTop: 6, gap: 8 },
  button: {
    paddingHorizontal: 12,
    paddingVertical: 6,
    borderRadius: 6,
    backgroundColor: '#eef1f6',
  },
  pressed: { opacity: 0.6 },
  buttonText: { color: '#2f6fdf', fontWeight: '600' },
});
