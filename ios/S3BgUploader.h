// The TurboModule `S3BgUploader` and the app delegate's hook.
//
// Objective-C++ (the adapter, S3BgUploader.mm) sees the codegen base class;
// plain Objective-C and Swift (an app delegate importing this pod) see an
// NSObject with the one class method they may call. It is the same class.
//
// The hook, for `application(_:handleEventsForBackgroundURLSession:completionHandler:)`:
// returns NO (and leaves `completionHandler` alone) when `identifier` is not
// this library's session. Otherwise it starts the engine if the app was
// launched for this; the finished part uploads are committed, the next ones
// handed over, and only then is `completionHandler` called (main queue).

#import <Foundation/Foundation.h>

#ifdef __cplusplus
#import <S3BgUploaderSpec/S3BgUploaderSpec.h>

@interface S3BgUploader : NativeS3BgUploaderSpecBase <NativeS3BgUploaderSpec>
+ (BOOL)handleEventsForBackgroundURLSession:(NSString *_Nonnull)identifier
                          completionHandler:(void (^_Nonnull)(void))completionHandler
    NS_SWIFT_NAME(handleEventsForBackgroundURLSession(_:completionHandler:));
@end

#else

@interface S3BgUploader : NSObject
+ (BOOL)handleEventsForBackgroundURLSession:(NSString *_Nonnull)identifier
                          completionHandler:(void (^_Nonnull)(void))completionHandler
    NS_SWIFT_NAME(handleEventsForBackgroundURLSession(_:completionHandler:));
@end

#endif
