// The one object that owns the engine on iOS. The TurboModule adapter
// (S3BgUploader.mm) forwards every JavaScript call here, one at a time in
// their order; the app delegate's hook (S3BgUploaderBackgroundEvents) comes
// here too. Every upload decision is the engine's: this class opens it,
// wires the platform pieces to it (file opener and roots, TLS trust, part
// transport, network state) and hands it the app's lifecycle
// (Lifecycle.swift) and, on iOS 26, the continued-processing task.
//
// Never compiled here (no Swift toolchain on the development machines): see
// the README's iOS section for what was and was not checked.

import Foundation
import UIKit

// The bindings (generated/S3bguCore.swift) import this C module only
// `#if canImport`: without it, hundreds of unrelated errors would follow.
#if !canImport(S3bguCoreFFI)
  #error("react-native-s3-bg-uploader: the C module S3bguCoreFFI is not found. The podspec names it with -fmodule-map-file (ios/generated/S3bguCoreFFI.modulemap): run `pod install` again, and check that OTHER_SWIFT_FLAGS keep $(inherited).")
#endif

@objc(S3BgUploaderImpl)
public final class S3BgUploaderImpl: NSObject {
  @objc public static let shared = S3BgUploaderImpl()

  private let session = BackgroundSession()
  private let network = NetworkMonitor()
  private let windows: BackgroundWindows
  private let lifecycle: AppLifecycle
  private let wakes: SessionWakes
  private let calls = SerialCalls()
  private let opening = Locked<Task<UploadEngine, Error>?>(nil)
  private let opened = Locked<UploadEngine?>(nil)
  /// An open engine whose queue a later call found damaged.
  private let damaged = Locked<UploadEngine?>(nil)
  private let sink = Locked<EventSink?>(nil)
  // A ContinuedProcessing on iOS 26 and later (typed through its protocol
  // so that the stored property needs no availability annotation).
  private var continued: ContinuedProcessingProtocol?

  private struct EventSink {
    var owner: ObjectIdentifier
    // Kept to subscribe again when a fresh queue replaces one set aside.
    var emit: (String, NSDictionary) -> Void
    var subscription: Subscription?
    var engine: ObjectIdentifier?
  }

  override private init() {
    let windows = BackgroundWindows()
    let lifecycle = AppLifecycle(windows: windows)
    self.windows = windows
    self.lifecycle = lifecycle
    self.wakes = SessionWakes(windows: windows) { [weak lifecycle] in lifecycle?.reportAgain() }
    super.init()
    #if compiler(>=6.2)
      if #available(iOS 26.0, *) {
        continued = ContinuedProcessing(lifecycle: lifecycle)
      }
    #endif
  }

  // MARK: the engine

  /// The engine, opened and wired once per process (blocking work off the
  /// main thread). A failed open is tried again by the next call, except a
  /// damaged queue, which stays failed until `setAsideQueue`.
  func engine() async throws -> UploadEngine {
    let task = openingTask()
    do {
      return try await task.value
    } catch {
      if !Self.isDamaged(error) {
        opening.with { slot in
          if slot == task {
            slot = nil
          }
        }
      }
      throw error
    }
  }

  private func openingTask() -> Task<UploadEngine, Error> {
    opening.with { slot -> Task<UploadEngine, Error> in
      if let task = slot {
        return task
      }
      let task = Task.detached(priority: .userInitiated) { try await self.openAndWire() }
      slot = task
      return task
    }
  }

  private static func isDamaged(_ error: Error) -> Bool {
    if let failure = error as? UploaderError {
      return failure.errorCode() == "database_corrupt"
    }
    if case JsError.Rejected(let code, _) = error {
      return code == "database_corrupt"
    }
    return false
  }

  /// The engine protocol's launch duties, in order: open without sending;
  /// opener, roots and transport; the network; reconcile the session's
  /// tasks; then the app's state (from here on every transition), and the
  /// session's wake-ups may drain.
  private func openAndWire() async throws -> UploadEngine {
    PlatformTrustInstaller.installOnce()
    let engine = try UploadEngine.open(dbPath: Self.queuePath(), start: false)
    do {
      try engine.setFileOpener(opener: BookmarkOpener())
      try engine.setFileRoots(roots: AppRoots.current())
      let config = try? await engine.config()
      let roots = (try? certificatesDerFromPem(pems: config?.extraRootCertificatesPem ?? [])) ?? []
      session.wire(
        BackgroundSession.Callbacks(
          report: { taskId, result in
            // Queued to the engine in order; it ignores ids it no longer holds.
            try? engine.reportPartTask(taskId: taskId, result: result)
          },
          progress: { taskId, sent in
            try? engine.reportPartTaskProgress(taskId: taskId, bytesSent: sent)
          },
          eventsFinished: { [weak self] in self?.wakes.eventsFinished() }),
        extraRootsDer: roots)
      try engine.setPartTransport(transport: session, settings: HandoffSettings())
      // Before the network (nothing is sent until that report): a file
      // refused while the device is locked then waits instead of failing.
      let unlocked = await MainActor.run { UIApplication.shared.isProtectedDataAvailable }
      try engine.setProtectedDataAvailable(available: unlocked)
      network.reportTo { online, metered in
        try? engine.setNetworkState(online: online, metered: metered)
      }
      let live = await session.liveTaskIds()
      let unknown = try await engine.reconcilePartTasks(liveTaskIds: live)
      session.cancel(taskIds: unknown)
    } catch {
      // Opened but not wired: closed (its lock with it) and unhooked, so
      // that the next call opens it cleanly.
      session.wire(nil, extraRootsDer: [])
      await engine.shutdown()
      throw error
    }
    opened.with { $0 = engine }
    await MainActor.run { self.lifecycle.attach(engine) }
    wakes.engineReady(engine)
    return engine
  }

  /// The queue database, in `queueDirectory()`.
  static func queuePath() throws -> String {
    try queueDirectory().appendingPathComponent("queue.db").path
  }

  /// Application Support/s3bgu: kept across updates, not in backups (the
  /// queue is device-local state), readable after the first unlock so that
  /// background wake-ups can open it while the device is locked.
  static func queueDirectory() throws -> URL {
    let fm = FileManager.default
    let base = try fm.url(
      for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
    var dir = base.appendingPathComponent("s3bgu", isDirectory: true)
    try fm.createDirectory(at: dir, withIntermediateDirectories: true, attributes: nil)
    try fm.setAttributes(
      [.protectionKey: FileProtectionType.completeUntilFirstUserAuthentication],
      ofItemAtPath: dir.path)
    var values = URLResourceValues()
    values.isExcludedFromBackup = true
    try dir.setResourceValues(values)
    return dir
  }

  // MARK: the session's wake-ups

  /// For `application(_:handleEventsForBackgroundURLSession:completionHandler:)`
  /// (through `S3BgUploaderBackgroundEvents`): main thread.
  @objc public static func handleEventsForBackgroundURLSession(
    _ identifier: String, completionHandler: @escaping () -> Void
  ) -> Bool {
    guard identifier == BackgroundSession.identifier else {
      return false
    }
    let impl = shared
    // Stored (with background time) before the session exists: opening
    // creates it, and iOS then delivers its events.
    impl.wakes.received(completionHandler)
    Task.detached {
      do {
        _ = try await impl.engine()
      } catch {
        NSLog("s3bgu: the upload queue could not be opened in the background: %@", "\(error)")
        impl.wakes.openFailed()
      }
    }
    return true
  }

  // MARK: events

  @objc public func setEventSink(
    _ emit: @escaping (String, NSDictionary) -> Void, owner: AnyObject
  ) {
    let id = ObjectIdentifier(owner)
    let previous = sink.with { state -> Subscription? in
      let old = state?.subscription
      state = EventSink(owner: id, emit: emit, subscription: nil)
      return old
    }
    previous?.cancel()
    Task.detached {
      do {
        let engine = try await self.engine()
        try self.subscribeEvents(engine)
      } catch {
        NSLog("s3bgu: events unavailable: %@", "\(error)")
      }
    }
  }

  /// Subscribes the current sink to `engine`, unless it is subscribed to
  /// it already or another module replaced it meanwhile; a subscription to
  /// an engine closed since (a queue set aside) is replaced.
  private func subscribeEvents(_ engine: UploadEngine) throws {
    let target = ObjectIdentifier(engine)
    guard let current = sink.with({ $0 }), current.engine != target else {
      return
    }
    let subscription = try engine.subscribeJson(observer: JsEvents(emit: current.emit))
    let replaced = sink.with { state -> (kept: Bool, old: Subscription?) in
      guard state?.owner == current.owner, state?.engine != target else {
        return (false, nil)
      }
      let old = state?.subscription
      state?.subscription = subscription
      state?.engine = target
      return (true, old)
    }
    replaced.old?.cancel()
    if !replaced.kept {
      subscription.cancel()
    }
  }

  @objc public func removeEventSink(owner: AnyObject) {
    let id = ObjectIdentifier(owner)
    let previous = sink.with { state -> Subscription? in
      guard state?.owner == id else {
        return nil
      }
      let old = state?.subscription
      state = nil
      return old
    }
    previous?.cancel()
  }

  // MARK: the TurboModule's methods

  @objc public func setConfig(
    _ configJson: String, resolve: @escaping (Any?) -> Void,
    reject: @escaping (String, String) -> Void
  ) {
    call(resolve, reject) { engine in
      try await engine.setConfigJson(configJson: configJson)
      return nil
    }
  }

  @objc public func uploadFile(
    _ path: String, transferId: String, fileName: String?, userParamsJson: String,
    resolve: @escaping (Any?) -> Void, reject: @escaping (String, String) -> Void
  ) {
    call(resolve, reject) { engine in
      // In the container: a path kept under its root. Outside it: the
      // picker's bookmark, or one made now, or a refusal.
      let source = try FileSource.forUpload(path)
      let json = try await engine.uploadFileJson(
        path: source, transferId: transferId, fileName: fileName,
        userParamsJson: userParamsJson)
      await self.continued?.requestIfUseful(engine: engine)
      return try parseJson(json)
    }
  }

  @objc public func pause(
    _ uploadId: NSNumber?, transferId: String?, resolve: @escaping (Any?) -> Void,
    reject: @escaping (String, String) -> Void
  ) {
    call(resolve, reject) { engine in
      try parseJson(
        try await engine.pauseJson(uploadId: uploadId?.doubleValue, transferId: transferId))
    }
  }

  @objc public func resume(
    _ uploadId: NSNumber?, transferId: String?, resolve: @escaping (Any?) -> Void,
    reject: @escaping (String, String) -> Void
  ) {
    call(resolve, reject) { engine in
      let json = try await engine.resumeJson(
        uploadId: uploadId?.doubleValue, transferId: transferId)
      await self.continued?.requestIfUseful(engine: engine)
      return try parseJson(json)
    }
  }

  @objc public func cancel(
    _ uploadId: NSNumber?, transferId: String?, resolve: @escaping (Any?) -> Void,
    reject: @escaping (String, String) -> Void
  ) {
    call(resolve, reject) { engine in
      try parseJson(
        try await engine.cancelJson(uploadId: uploadId?.doubleValue, transferId: transferId))
    }
  }

  @objc public func forget(
    _ uploadId: NSNumber?, transferId: String?, resolve: @escaping (Any?) -> Void,
    reject: @escaping (String, String) -> Void
  ) {
    call(resolve, reject) { engine in
      NSNumber(
        value: try await engine.forgetJson(
          uploadId: uploadId?.doubleValue, transferId: transferId))
    }
  }

  @objc public func getUploads(
    _ uploadId: NSNumber?, transferId: String?, resolve: @escaping (Any?) -> Void,
    reject: @escaping (String, String) -> Void
  ) {
    call(resolve, reject) { engine in
      try parseJson(
        try await engine.uploadsJson(uploadId: uploadId?.doubleValue, transferId: transferId))
    }
  }

  @objc public func getSummary(
    _ transferId: String?, resolve: @escaping (Any?) -> Void,
    reject: @escaping (String, String) -> Void
  ) {
    call(resolve, reject) { engine in
      try parseJson(try await engine.summaryJson(transferId: transferId))
    }
  }

  @objc public func setAsideQueue(
    _ resolve: @escaping (Any?) -> Void, reject: @escaping (String, String) -> Void
  ) {
    calls.enqueue {
      do {
        resolve(try await self.setAsideAndReopen())
      } catch {
        let (code, message) = rejection(of: error)
        reject(code, message)
      }
    }
  }

  /// The spec's `setAsideQueue`: only for a damaged queue (`database_corrupt`,
  /// found when opening it, or by a call since), never for a healthy one or
  /// another failure. Runs in the calls' order and through the opening
  /// slot: only the failed open (or the damaged engine) still current is
  /// set aside. The engine moves the file aside and keeps it; the fresh
  /// queue opens as at launch and the events follow it. Resolves with the
  /// kept file's path.
  private func setAsideAndReopen() async throws -> String {
    let current = openingTask()
    var engineFound: UploadEngine?
    do {
      engineFound = try await current.value
    } catch where Self.isDamaged(error) {
      engineFound = nil
    }
    if let engine = engineFound {
      guard damaged.with({ $0 === engine }) else {
        throw UploaderError.InvalidArgument(
          detail: "the queue opened normally: there is nothing to set aside")
      }
      // Damage found after the open: the engine closes before its file moves.
      await engine.shutdown()
    }
    let kept = try opening.with { slot -> String? in
      guard slot == current else {
        return nil
      }
      let kept = try setAsideDatabase(dbPath: Self.queuePath())
      slot = nil
      return kept
    }
    guard let kept else {
      throw UploaderError.InvalidArgument(detail: "the queue was set aside already")
    }
    damaged.with { $0 = nil }
    opened.with { $0 = nil }
    // The file is moved: its path is the answer even if the fresh queue
    // does not open now (the next call tries again).
    do {
      let engine = try await self.engine()
      try subscribeEvents(engine)
    } catch {
      NSLog("s3bgu: the fresh queue or its events are not ready yet: %@", "\(error)")
    }
    return kept
  }

  /// Runs one promise call after the calls made before it (JavaScript may
  /// fire `pause` then `resume` without awaiting): the engine's JSON result
  /// resolves it, its `JsError.Rejected(code, detail)` rejects it.
  private func call(
    _ resolve: @escaping (Any?) -> Void, _ reject: @escaping (String, String) -> Void,
    _ body: @escaping (UploadEngine) async throws -> Any?
  ) {
    calls.enqueue {
      var engineUsed: UploadEngine?
      do {
        let engine = try await self.engine()
        engineUsed = engine
        resolve(try await body(engine))
      } catch {
        if Self.isDamaged(error), let engine = engineUsed {
          // The queue is damaged under an open engine: setAsideQueue may
          // now set it aside.
          self.damaged.with { $0 = engine }
        }
        let (code, message) = rejection(of: error)
        reject(code, message)
      }
    }
  }
}

/// One call at a time, in the order they were made.
final class SerialCalls: @unchecked Sendable {
  private final class Link {
    var previous: Task<Void, Never>?
    init(_ previous: Task<Void, Never>?) {
      self.previous = previous
    }
  }

  private let last = Locked<Task<Void, Never>?>(nil)

  func enqueue(_ body: @escaping () async -> Void) {
    last.with { slot in
      // The link is cut once waited for: finished calls are not kept.
      let link = Link(slot)
      slot = Task.detached {
        await link.previous?.value
        link.previous = nil
        await body()
      }
    }
  }
}

/// JSON text from the engine -> Foundation objects React Native converts
/// (NSDictionary, NSArray, NSNumber, NSString, NSNull).
func parseJson(_ json: String) throws -> Any {
  try JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed])
}

/// A failure outside the JSON calls (opening the queue): the engine gives
/// its stable code and its message, as the JSON calls' `JsError` does.
func rejection(of error: Error) -> (String, String) {
  if case JsError.Rejected(let code, let detail) = error {
    return (code, detail)
  }
  guard let failure = error as? UploaderError else {
    return ("internal", "\(error)")
  }
  return (failure.errorCode(), failure.errorDetail())
}

/// The engine's events, handed to the module's emitters.
private final class JsEvents: JsEventObserver, @unchecked Sendable {
  private let emit: (String, NSDictionary) -> Void

  init(emit: @escaping (String, NSDictionary) -> Void) {
    self.emit = emit
  }

  func onEvent(name: String, json: String) throws {
    // Engine thread, in order: convert and hand over, nothing more.
    guard let payload = (try? parseJson(json)) as? NSDictionary else {
      return
    }
    emit(name, payload)
  }
}

/// A value behind a lock (iOS 15 has no `NSLock.withLock`).
final class Locked<Value>: @unchecked Sendable {
  private var value: Value
  private let lock = NSLock()

  init(_ value: Value) {
    self.value = value
  }

  func with<R>(_ body: (inout Value) throws -> R) rethrows -> R {
    lock.lock()
    defer { lock.unlock() }
    return try body(&value)
  }
}
