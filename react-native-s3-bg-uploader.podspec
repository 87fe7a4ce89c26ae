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

  # The ObjC++ TurboModule adapter, the Swift module behind it, and the
  # uniffi Swift bindings. The bindings' C header and module map come from
  # the xcframework (module S3bguCoreFFI), not from ios/generated.
  s.source_files = "ios/*.{h,mm,swift}", "ios/generated/S3bguCore.swift"
  s.public_header_files = "ios/S3BgUploader.h"
  s.vendored_frameworks = "ios/S3bguCore.xcframework"
  s.swift_version = "5.9"
  s.frameworks = "BackgroundTasks", "Network", "Security", "UIKit"

  # DEFINES_MODULE lets an app's Swift AppDelegate `import react_native_s3_bg_uploader`
  # for the background-session hook.
  s.pod_target_xcconfig = {
    "DEFINES_MODULE" => "YES",
  }

  # React Native's helper: React-Core, codegen (ReactCodegen), the new
  # architecture's header search paths and compiler flags.
  install_modules_dependencies(s)
end
