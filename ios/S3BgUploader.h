// The TurboModule `S3BgUploader`, for the adapter (S3BgUploader.mm) only:
// a project header of the pod, never public. Objective-C++ sees the codegen
// base class here. The app delegate's hook is a class of its own,
// `S3BgUploaderBackgroundEvents` (the pod's one public header).

#import <Foundation/Foundation.h>
#import <S3BgUploaderSpec/S3BgUploaderSpec.h>

@interface S3BgUploader : NativeS3BgUploaderSpecBase <NativeS3BgUploaderSpec>
@end
