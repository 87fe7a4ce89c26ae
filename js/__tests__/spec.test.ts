/**
 * The TurboModule spec as codegen reads it: what the Android and iOS modules
 * must implement. (scripts/test-js.sh also runs the generators on it.)
 */
// The development version, and the oldest one the library supports (peer react-native >= 0.76).
const codegens: Array<[string, string]> = [
  ['0.88', '@react-native/codegen/lib/cli/combine/combine-js-to-schema'],
  ['0.76', '@react-native/codegen-0.76/lib/cli/combine/combine-js-to-schema'],
];

type Schema = {
  modules: Record<
    string,
    {
      moduleName: string;
      spec: {
        methods: Array<{
          name: string;
          typeAnnotation: {
            params: unknown[];
            returnTypeAnnotation: { type: string; elementType?: { type: string } };
          };
        }>;
        eventEmitters: Array<{
          name: string;
          typeAnnotation: { typeAnnotation: { type: string; name?: string } };
        }>;
      };
    }
  >;
};

// jest runs from the package root, where codegenConfig.jsSrcsDir is relative to.
const srcDir = 'js/src';

describe.each(codegens)('TurboModule spec read by codegen %s', (_version, combine) => {
  const schema: Schema = require(combine).combineSchemasInFileList(
    [srcDir],
    null,
    null,
    'S3BgUploaderSpec',
  );

  it('is the only module codegen finds in jsSrcsDir', () => {
    expect(Object.keys(schema.modules)).toEqual(['NativeS3BgUploader']);
    expect(schema.modules.NativeS3BgUploader!.moduleName).toBe('S3BgUploader');
  });

  it('has a promise method for every API call', () => {
    const methods = schema.modules.NativeS3BgUploader!.spec.methods;
    expect(methods.map(m => m.name).sort()).toEqual(
      [
        'cancel',
        'forget',
        'getSummary',
        'getUploads',
        'pause',
        'resume',
        'setAsideQueue',
        'setConfig',
        'uploadFile',
      ].sort(),
    );
    for (const m of methods) {
      expect([m.name, m.typeAnnotation.returnTypeAnnotation.type]).toEqual([
        m.name,
        'PromiseTypeAnnotation',
      ]);
    }
  });

  it('has setAsideQueue taking nothing and promising the kept path as a string', () => {
    const method = schema.modules.NativeS3BgUploader!.spec.methods.find(
      m => m.name === 'setAsideQueue',
    );
    expect(method?.typeAnnotation.params).toEqual([]);
    expect(method?.typeAnnotation.returnTypeAnnotation.elementType?.type).toBe(
      'StringTypeAnnotation',
    );
  });

  it('has typed event emitters for progress and state changes', () => {
    const emitters = schema.modules.NativeS3BgUploader!.spec.eventEmitters;
    expect(emitters.map(e => [e.name, e.typeAnnotation.typeAnnotation.name])).toEqual([
      ['onProgress', 'NativeProgress'],
      ['onStateChange', 'NativeUpload'],
    ]);
  });
});

describe('TurboModule spec at runtime', () => {
  it("looks the module up under codegen's name, without throwing when it is absent", () => {
    const module = { marker: true };
    for (const found of [module, null]) {
      const get = jest.fn(() => found);
      const getEnforcing = jest.fn(() => {
        throw new Error('getEnforcing throws at import where the module is absent');
      });
      jest.isolateModules(() => {
        jest.doMock('react-native', () => ({ TurboModuleRegistry: { get, getEnforcing } }));
        expect(require('../src/NativeS3BgUploader').default).toBe(found);
      });
      expect(get).toHaveBeenCalledWith('S3BgUploader');
      expect(getEnforcing).not.toHaveBeenCalled();
    }
  });
});
