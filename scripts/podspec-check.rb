# Evaluates react-native-s3-bg-uploader.podspec the way CocoaPods loads a
# podspec (Ruby eval of the file), with a stand-in Pod::Spec that records
# what the podspec sets. CocoaPods itself is not installed here: this checks
# our file's own logic, not how CocoaPods or React Native's helper treat it.
#
#   ruby scripts/podspec-check.rb
#
# 1. Without ios/S3bguCore.xcframework the podspec stops with the one message
#    naming scripts/build-ios.sh.
# 2. With it: iOS 15.1, the xcframework vendored, React Native's
#    install_modules_dependencies called, and the source globs take every
#    Swift / Objective-C++ / header file of ios/ plus the generated Swift
#    bindings, and nothing else (the bindings' C header comes from the
#    xcframework).

require "fileutils"
require "tmpdir"

module Pod
  class Spec
    attr_reader :attrs

    def initialize
      @attrs = {}
      yield self
      $spec = self
    end

    def method_missing(name, *args)
      key = name.to_s
      return @attrs[key.chomp("=")] = args.first if key.end_with?("=")
      return @attrs[key] if @attrs.key?(key)
      super
    end

    def respond_to_missing?(_name, _all = false)
      true
    end
  end
end

$installed = nil
def install_modules_dependencies(spec)
  $installed = spec
end

ROOT = File.expand_path("..", __dir__)
PODSPEC = "react-native-s3-bg-uploader.podspec"
EXPECTED = "react-native-s3-bg-uploader: the engine binaries are missing (ios/S3bguCore.xcframework). " \
           "Run scripts/build-ios.sh (needs Rust + Xcode on macOS), or install the package from npm, which ships them."
$failures = 0

def check(ok, what)
  puts "#{ok ? 'ok  ' : 'FAIL'} #{what}"
  $failures += 1 unless ok
end

# A copy of the package's podspec, package.json and ios/ sources, so that the
# xcframework can be faked without touching the checkout.
def package_copy(dir, with_engine)
  FileUtils.cp(File.join(ROOT, PODSPEC), dir)
  FileUtils.cp(File.join(ROOT, "package.json"), dir)
  Dir.chdir(ROOT) do
    Dir.glob("ios/**/*").each do |f|
      next if File.directory?(f) || f.start_with?("ios/S3bguCore.xcframework")
      FileUtils.mkdir_p(File.join(dir, File.dirname(f)))
      FileUtils.cp(f, File.join(dir, f))
    end
  end
  FileUtils.mkdir_p(File.join(dir, "ios", "S3bguCore.xcframework")) if with_engine
end

def evaluate(dir)
  $spec = nil
  path = File.join(dir, PODSPEC)
  eval(File.read(path), TOPLEVEL_BINDING, path) # rubocop:disable Security/Eval
  $spec
end

Dir.mktmpdir do |dir|
  package_copy(dir, false)
  begin
    evaluate(dir)
    check(false, "without the xcframework the podspec stops")
  rescue RuntimeError => e
    check(e.message == EXPECTED, "without the xcframework: #{e.message}")
  end
end

Dir.mktmpdir do |dir|
  package_copy(dir, true)
  spec = evaluate(dir)
  a = spec.attrs
  check(a["name"] == "react-native-s3-bg-uploader", "name #{a['name']}")
  check(a["platforms"] == { ios: "15.1" }, "platforms #{a['platforms']}")
  check(a["vendored_frameworks"] == "ios/S3bguCore.xcframework", "vendors #{a['vendored_frameworks']}")
  check($installed.equal?(spec), "install_modules_dependencies(s) is called")
  check(a["pod_target_xcconfig"]&.fetch("DEFINES_MODULE", nil) == "YES", "DEFINES_MODULE for `import react_native_s3_bg_uploader`")
  globs = Array(a["source_files"])
  taken = Dir.chdir(dir) { globs.flat_map { |g| Dir.glob(g) }.uniq.sort }
  wanted = Dir.chdir(dir) do
    (Dir.glob("ios/*.{swift,mm,h}") + ["ios/generated/S3bguCore.swift"]).sort
  end
  check(!wanted.empty? && taken == wanted, "sources: #{taken.join(', ')}")
  public = Dir.chdir(dir) { Dir.glob(a["public_header_files"].to_s) }
  check(public == ["ios/S3BgUploader.h"], "public header #{public}")
end

puts $failures.zero? ? "podspec check: all passed" : "podspec check: #{$failures} failed"
exit($failures.zero? ? 0 : 1)
