require "json"

package = JSON.parse(File.read(File.join(__dir__, "package.json")))

# The engine is a static xcframework built from rust-core by
# scripts/build-ios.sh; the npm package ships it, a git checkout does not.
# Stop `pod install` here, with one message, rather than at link time.
engine = File.join(__dir__, "ios", "S3bguCore.xcframework")
unless File.directory?(engine)
  raise "react-native-s3-bg-uploader: the engine binaries are missing (ios/S3bguCore.xcframework). " \
        "Run scripts/build-ios.sh (needs Rust + Xcode on macOS), or install the package from npm, which ships them."
end

Pod::Spec.new do |s|
  s.name         = "react-native-s3-bg-uploader"
  s.version      = package["version"]
  s.summary      = package["description"]
  s.license      = package["license"]
  s.homepage     = package["homepage"] || "https://www.npmjs.com/package/react-native-s3-bg-uploader"
  s.authors      = package["author"] || "react-native-s3-bg-uploader contributors"
  s.platforms    = { :ios => "15.1" }
  # Installed from node_modules by React Native's autolinking (a :path pod).
  s.source       = { :path => "." }

  # The ObjC++ TurboModule adapter, the Swift module behind it, the app
  # delegate's hook (plain Objective-C), and the uniffi Swift bindings.
  s.source_files = "ios/*.{h,m,mm,swift}", "ios/generated/S3bguCore.swift"
  # The hook's header alone is public: one class, one import line, for
  # Swift, Objective-C and Objective-C++ app delegates. Under this
  # directory name both as a static library and with use_frameworks!:
  # #import <react_native_s3_bg_uploader/S3BgUploaderBackgroundEvents.h>.
  s.public_header_files = "ios/S3BgUploaderBackgroundEvents.h"
  s.header_dir = "react_native_s3_bg_uploader"
  s.vendored_frameworks = "ios/S3bguCore.xcframework"
  s.swift_version = "5.9"
  s.frameworks = "BackgroundTasks", "Network", "Security", "UIKit"
  # What the engine does with file timestamps and the monotonic clock.
  s.resource_bundles = { "react_native_s3_bg_uploader_privacy" => ["ios/PrivacyInfo.xcprivacy"] }

  # The bindings' C module (S3bguCoreFFI) is named by its module map,
  # explicitly, for the pod and for the app that imports the pod's Swift
  # module: nothing depends on when the xcframework's headers are copied.
  # Absolute paths, made at `pod install`, where the package is.
  ffi = File.join(__dir__, "ios", "generated")
  s.preserve_paths = "ios/generated/S3bguCoreFFI.h", "ios/generated/S3bguCoreFFI.modulemap"
  module_map_flag = "-Xcc -fmodule-map-file=\"#{ffi}/S3bguCoreFFI.modulemap\""

  # DEFINES_MODULE lets an app's Swift AppDelegate `import react_native_s3_bg_uploader`
  # for the background-session hook.
  s.pod_target_xcconfig = {
    "DEFINES_MODULE" => "YES",
    "HEADER_SEARCH_PATHS" => "$(inherited) \"#{ffi}\"",
    "SWIFT_INCLUDE_PATHS" => "$(inherited) \"#{ffi}\"",
    "OTHER_SWIFT_FLAGS" => "$(inherited) #{module_map_flag}",
  }
  s.user_target_xcconfig = {
    "SWIFT_INCLUDE_PATHS" => "$(inherited) \"#{ffi}\"",
    "OTHER_SWIFT_FLAGS" => "$(inherited) #{module_map_flag}",
  }

  # React Native's helper: React-Core, codegen (ReactCodegen), the new
  # architecture's header search paths and compiler flags.
  install_modules_dependencies(s)
end
