// The app delegate's hook for the library's background URLSession, and the
// pod's only public header: plain Objective-C, the same class for Swift,
// Objective-C and Objective-C++ app delegates.
//
// Swift:        import react_native_s3_bg_uploader
// Objective-C:  #import <react_native_s3_bg_uploader/S3BgUploaderBackgroundEvents.h>
//
// In `application(_:handleEventsForBackgroundURLSession:completionHandler:)`,
// return when this answers YES (the handler is then the library's to call);
// on NO (another session's identifier) it left `completionHandler` alone.
// Main thread, as UIKit calls the app delegate.

#import <Foundation/Foundation.h>

@interface S3BgUploaderBackgroundEvents : NSObject

/// YES when `identifier` is the library's session: the library opens its
/// queue if the app was launched for this, commits the finished part
/// uploads, hands the next ones over, and only then calls
/// `completionHandler` (main queue).
+ (BOOL)handleEventsForBackgroundURLSession:(NSString *_Nonnull)identifier
                          completionHandler:(void (^_Nonnull)(void))completionHandler
    NS_SWIFT_NAME(handleEventsForBackgroundURLSession(_:completionHandler:));

- (instancetype)init NS_UNAVAILABLE;

@end
