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
#    Swift / Objective-C(++) / header file of ios/ plus the generated Swift
#    bindings, and nothing else; one plain Objective-C public header under
#    the module's directory name; the bindings' module map named explicitly
#    (flags for the pod and the app, preserved files, a clear #error when
#    the module is missing); the privacy manifest bundled and declaring the
#    required-reason APIs the engine uses.

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
    (Dir.glob("ios/*.{swift,m,mm,h}") + ["ios/generated/S3bguCore.swift"]).sort
  end
  check(!wanted.empty? && taken == wanted, "sources: #{taken.join(', ')}")
  public = Dir.chdir(dir) { Dir.glob(a["public_header_files"].to_s) }
  check(public == ["ios/S3BgUploaderBackgroundEvents.h"], "public header #{public}")
  hook = File.read(File.join(dir, "ios/S3BgUploaderBackgroundEvents.h"))
  check(!hook.include?("__cplusplus") && !hook.include?("S3BgUploaderSpec"),
        "the public header is plain Objective-C (no C++ branch, no codegen import)")
  check(a["header_dir"] == "react_native_s3_bg_uploader",
        "header_dir #{a['header_dir']} (#import <react_native_s3_bg_uploader/...>)")

  # The C module of the bindings, named explicitly for the pod and the app.
  map = File.join(dir, "ios", "generated", "S3bguCoreFFI.modulemap")
  flag = "-fmodule-map-file=\"#{map}\""
  kept = Dir.chdir(dir) { Array(a["preserve_paths"]).flat_map { |g| Dir.glob(g) }.sort }
  check(kept == ["ios/generated/S3bguCoreFFI.h", "ios/generated/S3bguCoreFFI.modulemap"],
        "preserve_paths keep the module map and its header: #{kept}")
  %w[pod_target_xcconfig user_target_xcconfig].each do |key|
    config = a[key] || {}
    check(config["OTHER_SWIFT_FLAGS"].to_s.include?("-Xcc #{flag}"),
          "#{key}: OTHER_SWIFT_FLAGS name the module map (#{config['OTHER_SWIFT_FLAGS']})")
    check(config["SWIFT_INCLUDE_PATHS"].to_s.include?(File.dirname(map)),
          "#{key}: SWIFT_INCLUDE_PATHS has the module map's directory")
    check(config["OTHER_SWIFT_FLAGS"].to_s.start_with?("$(inherited)"), "#{key}: flags keep $(inherited)")
  end
  check(File.read(map).include?("module S3bguCoreFFI") && File.exist?(File.join(File.dirname(map), "S3bguCoreFFI.h")),
        "the module map defines S3bguCoreFFI beside its header")
  guard = File.read(File.join(dir, "ios/S3BgUploaderImpl.swift"))
  check(guard.include?("#if !canImport(S3bguCoreFFI)") && guard.include?("#error("),
        "a missing S3bguCoreFFI module stops the build with one message")

  # The privacy manifest: bundled, well-formed, declaring the two
  # required-reason API categories the engine uses.
  bundles = a["resource_bundles"] || {}
  files = bundles.values.flatten
  check(files == ["ios/PrivacyInfo.xcprivacy"], "resource bundle with the privacy manifest: #{bundles}")
  require "rexml/document"
  manifest = File.join(dir, "ios/PrivacyInfo.xcprivacy")
  begin
    doc = REXML::Document.new(File.read(manifest))
    strings = REXML::XPath.match(doc, "//string").map(&:text)
    check(strings.include?("NSPrivacyAccessedAPICategoryFileTimestamp") && strings.include?("C617.1"),
          "privacy manifest: file timestamps (C617.1)")
    check(strings.include?("NSPrivacyAccessedAPICategorySystemBootTime") && strings.include?("35F9.1"),
          "privacy manifest: system boot time (35F9.1)")
    tracking = REXML::XPath.first(doc, "//key[text()='NSPrivacyTracking']")&.next_element&.name
    check(tracking == "false", "privacy manifest: no tracking")
  rescue REXML::ParseException => e
    check(false, "privacy manifest is not well-formed XML: #{e.message.lines.first}")
  end
end

puts $failures.zero? ? "podspec check: all passed" : "podspec check: #{$failures} failed"
exit($failures.zero? ? 0 : 1)
