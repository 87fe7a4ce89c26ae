import { StyleSheet, View } from 'react-native';

/** A horizontal bar filled to `value` (0..1). */
export function ProgressBar({ value, color = '#2f6fdf' }: { value: number; color?: string }) {
  const width = `${Math.round(Math.min(1, Math.max(0, value)) * 1000) / 10}%` as const;
  return (
    <View
      style={styles.track}
      accessibilityRole="progressbar"
      accessibilityValue={{ min: 0, max: 100, now: Math.round(value * 100) }}
    >
      <View style={[styles.fill, { width, backgroundColor: color }]} />
    </View>
  );
}

const styles = StyleSheet.create({
  track: { height: 8, borderRadius: 4, backgroundColor: '#e3e6ec', overflow: 'hidden' },
  fill: { height: 8 },
});
