import { StyleSheet, Text, View } from 'react-native';
import { useSummary } from 'react-native-s3-bg-uploader';
import { ProgressBar } from './ProgressBar';
import { formatBytes, fraction, percent } from './format';

/** Totals of one transfer (or of everything without a transfer id). */
export function SummaryCard({ transferId, title }: { transferId?: string; title: string }) {
  const { summary, error } = useSummary(transferId);
  if (error) {
    return <Text style={styles.error}>{`${title}: ${error.code}: ${error.message}`}</Text>;
  }
  if (!summary) {
    return <Text style={styles.muted}>{title}: loading…</Text>;
  }
  const done = fraction(summary.uploadedBytes, summary.totalBytes, summary.state === 'COMPLETED');
  return (
    <View style={styles.card}>
      <View style={styles.header}>
        <Text style={styles.title}>{title}</Text>
        <Text style={styles.state}>{summary.state}</Text>
      </View>
      <ProgressBar value={done} />
      <Text style={styles.muted}>
        {summary.completed}/{summary.uploads - summary.cancelled} files ·{' '}
        {formatBytes(summary.uploadedBytes)} / {formatBytes(summary.totalBytes)} ({percent(done)})
        {summary.failed > 0 ? ` · ${summary.failed} failed` : ''}
        {summary.paused > 0 ? ` · ${summary.paused} paused` : ''}
        {transferId === undefined
          ? ` · transfers ${summary.completedTransfers}/${summary.transfers}`
          : ''}
      </Text>
    </View>
  );
}

const styles = StyleSheet.create({
  card: { paddingVertical: 8 },
  header: { flexDirection: 'row', justifyContent: 'space-between', marginBottom: 6 },
  title: { fontWeight: '700' },
  state: { fontWeight: '700', color: '#2f6fdf', fontSize: 12 },
  muted: { color: '#555b66', fontSize: 12, marginTop: 4 },
  error: { color: '#d64545', fontSize: 12 },
});
