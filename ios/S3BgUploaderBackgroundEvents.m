// The app delegate's hook: forwards to the Swift class that owns the engine.

#import "S3BgUploaderBackgroundEvents.h"

#if __has_include(<react_native_s3_bg_uploader/react_native_s3_bg_uploader-Swift.h>)
#import <react_native_s3_bg_uploader/react_native_s3_bg_uploader-Swift.h>
#else
#import "react_native_s3_bg_uploader-Swift.h"
#endif

@implementation S3BgUploaderBackgroundEvents

+ (BOOL)handleEventsForBackgroundURLSession:(NSString *)identifier
                          completionHandler:(void (^)(void))completionHandler
{
  return [S3BgUploaderImpl handleEventsForBackgroundURLSession:identifier
                                             completionHandler:completionHandler];
}

@end
