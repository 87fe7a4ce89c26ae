/**
 * Example app of react-native-s3-bg-uploader: point it at a backend (by
 * default the reference backend, `s3bgu serve`, on the dev machine), pick
 * files, and watch them upload; pause, resume or cancel one file, the
 * transfer or everything.
 */
import { useCallback, useState } from 'react';
import {
  FlatList,
  Pressable,
  StatusBar,
  StyleSheet,
  Switch,
  Text,
  TextInput,
  View,
} from 'react-native';
import { SafeAreaProvider, SafeAreaView } from 'react-native-safe-area-context';
import {
  errorCodes,
  isErrorWithCode,
  keepLocalCopy,
  pick,
  type FileToCopy,
  type NonEmptyArray,
} from '@react-native-documents/picker';
import {
  cancel,
  isUploadError,
  pause,
  resume,
  setConfig,
  uploadFile,
  useUploads,
  type Upload,
} from 'react-native-s3-bg-uploader';
import { configFor, defaultBackendUrl } from './src/backend';
import { askForNotificationPermission } from './src/notifications';
import { SummaryCard } from './src/SummaryCard';
import { SmallButton, UploadRow } from './src/UploadRow';

function newTransferId(): string {
  return `demo-${Date.now().toString(36)}`;
}

/** A failure as the person using the app should read it. */
function describeFailure(action: string, e: unknown): string {
  if (isUploadError(e)) {
    return `${action} failed (${e.code}): ${e.message}`;
  }
  return `${action} failed: ${e instanceof Error ? e.message : String(e)}`;
}

export default function App() {
  return (
    <SafeAreaProvider>
      <StatusBar barStyle="dark-content" />
      <SafeAreaView style={styles.screen} edges={['top', 'bottom']}>
        <UploaderScreen />
      </SafeAreaView>
    </SafeAreaProvider>
  );
}

function UploaderScreen() {
  const [backendUrl, setBackendUrl] = useState(defaultBackendUrl);
  const [token, setToken] = useState('');
  const [configured, setConfigured] = useState(false);
  const [transferId, setTransferId] = useState(newTransferId);
  const [path, setPath] = useState('');
  const [showAll, setShowAll] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const { uploads, loading, error } = useUploads(showAll ? undefined : { transferId });

  /** Runs an action, showing its failure (if any) in the banner. */
  const run = useCallback(async (action: string, work: () => Promise<unknown>) => {
    setFailure(null);
    setBusy(true);
    try {
      await work();
    } catch (e) {
      setFailure(describeFailure(action, e));
    } finally {
      setBusy(false);
    }
  }, []);

  const applyConfig = () =>
    run('setConfig', async () => {
      await setConfig(configFor(backendUrl, token));
      await askForNotificationPermission();
      setConfigured(true);
    });

  const addPath = () =>
    run('uploadFile', async () => {
      await uploadFile(path.trim(), { transferId, userParams: { source: 'example-app' } });
      setPath('');
    });

  const pickFiles = () =>
    run('Adding files', async () => {
      let picked;
      try {
        picked = await pick({ allowMultiSelection: true, mode: 'import' });
      } catch (e) {
        if (isErrorWithCode(e) && e.code === errorCodes.OPERATION_CANCELED) {
          return;
        }
        throw e;
      }
      // The engine reads files by path, again after a restart: copy the
      // picked documents into the app's documents directory (not a cache
      // the system may purge).
      const files = picked.map(f => ({ uri: f.uri, fileName: f.name ?? 'file' }));
      const copies = await keepLocalCopy({
        files: files as NonEmptyArray<FileToCopy>,
        destination: 'documentDirectory',
      });
      const problems: string[] = [];
      for (const copy of copies) {
        if (copy.status === 'success') {
          await uploadFile(copy.localUri, { transferId, userParams: { source: 'example-app' } });
        } else {
          problems.push(copy.copyError);
        }
      }
      if (problems.length > 0) {
        throw new Error(`could not copy ${problems.length} file(s): ${problems.join('; ')}`);
      }
    });

  const onPause = (id: number) => run('pause', () => pause({ id }));
  const onResume = (id: number) => run('resume', () => resume({ id }));
  const onCancel = (id: number) => run('cancel', () => cancel({ id }));

  const header = (
    <View>
      <Text style={styles.heading}>S3 background uploader</Text>

      <Text style={styles.label}>
        Backend (reference backend: s3bgu serve --listen 0.0.0.0:8080)
      </Text>
      {/* The testIDs are the e2e flows' handles (example-app/e2e); the library has none. */}
      <TextInput
        style={styles.input}
        testID="backend-url"
        value={backendUrl}
        onChangeText={text => {
          setBackendUrl(text);
          setConfigured(false);
        }}
        autoCapitalize="none"
        autoCorrect={false}
        keyboardType="url"
        placeholder="http://192.168.1.10:8080"
      />
      <TextInput
        style={styles.input}
        value={token}
        onChangeText={text => {
          setToken(text);
          setConfigured(false);
        }}
        autoCapitalize="none"
        autoCorrect={false}
        secureTextEntry
        placeholder="Bearer token (optional)"
      />
      <View style={styles.line}>
        <SmallButton
          label={configured ? 'Config applied ✓' : 'Apply config'}
          onPress={applyConfig}
          testID="apply-config"
        />
      </View>

      <Text style={styles.label}>Transfer</Text>
      <View style={styles.line}>
        <TextInput
          style={[styles.input, styles.grow]}
          testID="transfer-id"
          value={transferId}
          onChangeText={setTransferId}
          autoCapitalize="none"
          autoCorrect={false}
        />
        <SmallButton label="New" onPress={() => setTransferId(newTransferId())} />
      </View>
      <View style={styles.line}>
        <SmallButton label="Pick files…" onPress={pickFiles} />
      </View>
      <View style={styles.line}>
        <TextInput
          style={[styles.input, styles.grow]}
          testID="path-input"
          value={path}
          onChangeText={setPath}
          autoCapitalize="none"
          autoCorrect={false}
          placeholder="/absolute/path or file:// URI"
        />
        <SmallButton label="Add" onPress={addPath} testID="add-path" />
      </View>

      {failure ? (
        <Pressable onPress={() => setFailure(null)} accessibilityRole="alert">
          <Text style={styles.failure}>{failure} (tap to dismiss)</Text>
        </Pressable>
      ) : null}
      {busy ? <Text style={styles.muted}>Working…</Text> : null}

      <SummaryCard transferId={transferId} title={`Transfer ${transferId}`} />
      <View style={styles.line}>
        <SmallButton
          label="Pause transfer"
          onPress={() => run('pause', () => pause({ transferId }))}
        />
        <SmallButton
          label="Resume transfer"
          onPress={() => run('resume', () => resume({ transferId }))}
        />
        <SmallButton
          label="Cancel transfer"
          onPress={() => run('cancel', () => cancel({ transferId }))}
        />
      </View>
      <SummaryCard title="All uploads" />
      <View style={styles.line}>
        <SmallButton label="Pause all" onPress={() => run('pause', () => pause({ all: true }))} />
        <SmallButton
          label="Resume all"
          onPress={() => run('resume', () => resume({ all: true }))}
        />
        <SmallButton
          label="Cancel all"
          onPress={() => run('cancel', () => cancel({ all: true }))}
        />
      </View>

      <View style={[styles.line, styles.between]}>
        <Text style={styles.label}>{showAll ? 'All uploads' : 'Uploads of this transfer'}</Text>
        <Switch value={showAll} onValueChange={setShowAll} accessibilityLabel="Show all uploads" />
      </View>
      {error ? (
        <Text
          style={styles.failure}
        >{`Reading uploads failed (${error.code}): ${error.message}`}</Text>
      ) : null}
      {loading ? <Text style={styles.muted}>Loading…</Text> : null}
    </View>
  );

  return (
    <FlatList<Upload>
      contentContainerStyle={styles.content}
      data={uploads}
      keyExtractor={u => String(u.id)}
      ListHeaderComponent={header}
      ListEmptyComponent={loading ? undefined : <Text style={styles.muted}>No uploads yet.</Text>}
      renderItem={({ item }) => (
        <UploadRow upload={item} onPause={onPause} onResume={onResume} onCancel={onCancel} />
      )}
      keyboardShouldPersistTaps="handled"
    />
  );
}

const styles = StyleSheet.create({
  screen: { flex: 1, backgroundColor: '#fff' },
  content: { padding: 16 },
  heading: { fontSize: 20, fontWeight: '700', marginBottom: 12 },
  label: { fontWeight: '600', marginTop: 12, marginBottom: 4 },
  input: {
    borderWidth: 1,
    borderColor: '#ccd',
    borderRadius: 6,
    paddingHorizontal: 10,
    paddingVertical: 6,
    marginBottom: 6,
  },
  grow: { flex: 1, marginBottom: 0 },
  line: { flexDirection: 'row', alignItems: 'center', gap: 8, marginVertical: 4, flexWrap: 'wrap' },
  between: { justifyContent: 'space-between' },
  failure: { color: '#d64545', marginVertical: 6 },
  muted: { color: '#555b66', fontSize: 12, marginVertical: 4 },
});
