// The TurboModule adapter: conforms to the codegen protocol and forwards
// every call to the Swift class that owns the engine (S3BgUploaderImpl).
// No logic here: arguments go through as they came, results and events come
// back as Foundation objects made from the engine's JSON.

#import "S3BgUploader.h"

#import <React/RCTInvalidating.h>

#if __has_include(<react_native_s3_bg_uploader/react_native_s3_bg_uploader-Swift.h>)
#import <react_native_s3_bg_uploader/react_native_s3_bg_uploader-Swift.h>
#else
#import "react_native_s3_bg_uploader-Swift.h"
#endif

@interface S3BgUploader () <RCTInvalidating>
@end

@implementation S3BgUploader {
  S3BgUploaderImpl *_impl;
}

RCT_EXPORT_MODULE(S3BgUploader)

+ (BOOL)requiresMainQueueSetup
{
  // The engine opens off the main thread; nothing here touches UIKit.
  return NO;
}

- (instancetype)init
{
  if (self = [super init]) {
    _impl = [S3BgUploaderImpl shared];
  }
  return self;
}

// syntax-check: c++ begin (C++ types in an Objective-C method: no grammar here parses them)
- (std::shared_ptr<facebook::react::TurboModule>)getTurboModule:
    (const facebook::react::ObjCTurboModule::InitParams &)params
{
  return std::make_shared<facebook::react::NativeS3BgUploaderSpecJSI>(params);
}
// syntax-check: c++ end

// React Native hands the emitters over after init: only then can events
// reach JavaScript, so the engine subscription starts here.
- (void)setEventEmitterCallback:(EventEmitterCallbackWrapper *)eventEmitterCallbackWrapper
{
  [super setEventEmitterCallback:eventEmitterCallbackWrapper];
  __weak S3BgUploader *weakSelf = self;
  [_impl setEventSink:^(NSString *name, NSDictionary *payload) {
    S3BgUploader *strongSelf = weakSelf;
    if (strongSelf == nil) {
      return;
    }
    if ([name isEqualToString:@"onProgress"]) {
      [strongSelf emitOnProgress:payload];
    } else if ([name isEqualToString:@"onStateChange"]) {
      [strongSelf emitOnStateChange:payload];
    }
  }
                owner:self];
}

- (void)invalidate
{
  // A reload makes a new module; only this module's sink goes.
  [_impl removeEventSinkWithOwner:self];
}

typedef void (^S3BgUploaderReject)(NSString *code, NSString *message);

// The Swift side rejects with the engine's stable code and its message.
static S3BgUploaderReject rejecter(RCTPromiseRejectBlock reject)
{
  return ^(NSString *code, NSString *message) {
    reject(code, message, nil);
  };
}

- (void)setConfig:(NSString *)configJson
          resolve:(RCTPromiseResolveBlock)resolve
           reject:(RCTPromiseRejectBlock)reject
{
  [_impl setConfig:configJson resolve:resolve reject:rejecter(reject)];
}

- (void)uploadFile:(NSString *)path
        transferId:(NSString *)transferId
          fileName:(NSString *_Nullable)fileName
    userParamsJson:(NSString *)userParamsJson
           resolve:(RCTPromiseResolveBlock)resolve
            reject:(RCTPromiseRejectBlock)reject
{
  [_impl uploadFile:path
          transferId:transferId
            fileName:fileName
      userParamsJson:userParamsJson
             resolve:resolve
              reject:rejecter(reject)];
}

- (void)pause:(NSNumber *)uploadId
   transferId:(NSString *_Nullable)transferId
      resolve:(RCTPromiseResolveBlock)resolve
       reject:(RCTPromiseRejectBlock)reject
{
  [_impl pause:uploadId transferId:transferId resolve:resolve reject:rejecter(reject)];
}

- (void)resume:(NSNumber *)uploadId
    transferId:(NSString *_Nullable)transferId
       resolve:(RCTPromiseResolveBlock)resolve
        reject:(RCTPromiseRejectBlock)reject
{
  [_impl resume:uploadId transferId:transferId resolve:resolve reject:rejecter(reject)];
}

- (void)cancel:(NSNumber *)uploadId
    transferId:(NSString *_Nullable)transferId
       resolve:(RCTPromiseResolveBlock)resolve
        reject:(RCTPromiseRejectBlock)reject
{
  [_impl cancel:uploadId transferId:transferId resolve:resolve reject:rejecter(reject)];
}

- (void)forget:(NSNumber *)uploadId
    transferId:(NSString *_Nullable)transferId
       resolve:(RCTPromiseResolveBlock)resolve
        reject:(RCTPromiseRejectBlock)reject
{
  [_impl forget:uploadId transferId:transferId resolve:resolve reject:rejecter(reject)];
}

- (void)getUploads:(NSNumber *)uploadId
        transferId:(NSString *_Nullable)transferId
           resolve:(RCTPromiseResolveBlock)resolve
            reject:(RCTPromiseRejectBlock)reject
{
  [_impl getUploads:uploadId transferId:transferId resolve:resolve reject:rejecter(reject)];
}

- (void)getSummary:(NSString *_Nullable)transferId
           resolve:(RCTPromiseResolveBlock)resolve
            reject:(RCTPromiseRejectBlock)reject
{
  [_impl getSummary:transferId resolve:resolve reject:rejecter(reject)];
}

- (void)setAsideQueue:(RCTPromiseResolveBlock)resolve reject:(RCTPromiseRejectBlock)reject
{
  [_impl setAsideQueue:resolve reject:rejecter(reject)];
}

@end
