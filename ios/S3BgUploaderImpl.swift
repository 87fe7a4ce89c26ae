// The one object that owns the engine on iOS. The TurboModule adapter
// (S3BgUploader.mm) forwards every JavaScript call here; the app delegate's
// background-session hook and the app's lifecycle notifications come here
// too. Every upload decision is the engine's: this class opens it, wires the
// platform pieces to it (file opener, TLS trust, part transport, network
// state) and tells it when the app enters or leaves the foreground.
//
// Never compiled here (no Swift toolchain on the development machines): see
// the README's iOS section for what was and was not checked.

import Foundation
import UIKit

@objc(S3BgUploaderImpl)
public final class S3BgUploaderImpl: NSObject {
  @objc public static let shared = S3BgUploaderImpl()

  private let session = BackgroundSession()
  private let network = NetworkMonitor()
  private let windows = BackgroundWindows()
  private let opening = Locked<Task<UploadEngine, Error>?>(nil)
  private let opened = Locked<UploadEngine?>(nil)
  private let sink = Locked<EventSink?>(nil)
  // A ContinuedProcessing on iOS 26 and later (typed AnyObject so that the
  // stored property needs no availability annotation).
  private var continued: AnyObject?

  private struct EventSink {
    var owner: ObjectIdentifier
    // Kept to subscribe again when a fresh queue replaces one set aside.
    var emit: (String, NSDictionary) -> Void
    var subscription: Subscription?
  }

  override private init() {
    super.init()
    #if compiler(>=6.2)
      if #available(iOS 26.0, *) {
        continued = ContinuedProcessing()
      }
    #endif
    let center = NotificationCenter.default
    center.addObserver(
      self, selector: #selector(didEnterBackground),
      name: UIApplication.didEnterBackgroundNotification, object: nil)
    center.addObserver(
      self, selector: #selector(willEnterForeground),
      name: UIApplication.willEnterForegroundNotification, object: nil)
  }

  // MARK: the engine

  /// The engine, opened and wired once per process (blocking work off the
  /// main thread). A failed open is tried again on the next call.
  func engine() async throws -> UploadEngine {
    let task = opening.with { slot -> Task<UploadEngine, Error> in
      if let task = slot {
        return task
      }
      let task = Task.detached(priority: .userInitiated) { try await self.openAndWire() }
      slot = task
      return task
    }
    do {
      return try await task.value
    } catch {
      opening.with { slot in
        if slot == task {
          slot = nil
        }
      }
      throw error
    }
  }

  /// The engine protocol's launch duties, in order: open without sending,
  /// opener and transport, reconcile the session's tasks, then the mode the
  /// app's state calls for.
  private func openAndWire() async throws -> UploadEngine {
    PlatformTrustInstaller.installOnce()
    let engine = try UploadEngine.open(dbPath: Self.queuePath(), start: false)
    try engine.setFileOpener(opener: BookmarkOpener())
    // The mode comes before the session exists: its events (and a drain
    // after them) may follow at once when iOS launched the app for them.
    let inForeground = await MainActor.run {
      UIApplication.shared.applicationState != .background
    }
    try await engine.setPartMode(mode: inForeground ? .direct : .handoff)
    session.onReport = { taskId, result in
      // Reports are queued to the engine in order; it ignores ids it no longer holds.
      try? engine.reportPartTask(taskId: taskId, result: result)
    }
    session.onEventsFinished = { [weak self] in
      self?.drainAfterWakeUp(engine)
    }
    try engine.setPartTransport(transport: session, settings: HandoffSettings())
    await refreshSessionSettings(engine)
    let live = await session.liveTaskIds()
    let unknown = try await engine.reconcilePartTasks(liveTaskIds: live)
    session.cancel(taskIds: unknown)
    network.start { online, metered in
      try? engine.setNetworkState(online: online, metered: metered)
    }
    opened.with { $0 = engine }
    if inForeground {
      try await engine.start()
      // Left the foreground while this opened: that notification found no engine.
      let left = await MainActor.run { UIApplication.shared.applicationState == .background }
      if left {
        didEnterBackground()
      }
    } else {
      // Launched in the background (a session wake-up): hand parts over
      // within the time iOS gives, then let the app be suspended.
      windows.run(name: "s3bgu.launch", engine: engine, mode: .handoff) {}
    }
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

  /// Handed-off parts trust the configured roots too (the network policy
  /// comes with each task).
  private func refreshSessionSettings(_ engine: UploadEngine) async {
    let config = try? await engine.config()
    let pems = config?.extraRootCertificatesPem ?? []
    session.extraRoots = (try? certificatesDerFromPem(pems: pems)) ?? []
  }

  // MARK: the app's lifecycle

  @objc private func didEnterBackground() {
    if let continued = continuedProcessing(), continued.isActive {
      // A continued-processing task keeps the process running: the engine
      // goes on sending directly until that task expires.
      return
    }
    enterHandoff()
  }

  @objc private func willEnterForeground() {
    windows.endAll()
    guard let engine = opened.with({ $0 }) else {
      return
    }
    Task.detached {
      try? await engine.setPartMode(mode: .direct)
      try? await engine.start()
    }
  }

  /// On the way into suspension: stop the engine's own PUTs, stage and hand
  /// the parts to the background session, within a background-task window.
  func enterHandoff() {
    guard let engine = opened.with({ $0 }) else {
      return
    }
    windows.run(name: "s3bgu.handoff", engine: engine, mode: .handoff) {}
  }

  private func drainAfterWakeUp(_ engine: UploadEngine) {
    // The session's reports are already queued to the engine; running it
    // until idle commits them, sends `complete` where a last part landed and
    // hands the next parts over. Only then may iOS suspend the app again.
    windows.run(name: "s3bgu.wakeup", engine: engine, mode: nil) { [session] in
      session.callSystemCompletions()
    }
  }

  /// For `application(_:handleEventsForBackgroundURLSession:completionHandler:)`.
  @objc public static func handleEventsForBackgroundURLSession(
    _ identifier: String, completionHandler: @escaping () -> Void
  ) -> Bool {
    guard identifier == BackgroundSession.identifier else {
      return false
    }
    let impl = shared
    impl.session.addSystemCompletion(completionHandler)
    Task.detached {
      do {
        // Opening recreates the session; iOS then delivers its events and
        // `urlSessionDidFinishEvents` leads to drainAfterWakeUp.
        _ = try await impl.engine()
      } catch {
        NSLog("s3bgu: the upload queue could not be opened in the background: %@", "\(error)")
        impl.session.callSystemCompletions()
      }
    }
    return true
  }

  private func continuedProcessing() -> ContinuedProcessingProtocol? {
    continued as? ContinuedProcessingProtocol
  }

  /// After the person started work (uploadFile, resume) in the foreground.
  private func userStartedWork(_ engine: UploadEngine) {
    continuedProcessing()?.beginIfNeeded(engine: engine) { [weak self] in
      // It expired (time, resources, or the person stopped it): the
      // background session carries the parts on.
      self?.enterHandoff()
    }
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

  /// Subscribes the current sink to `engine`, unless it already has a
  /// subscription or another module replaced it meanwhile.
  private func subscribeEvents(_ engine: UploadEngine) throws {
    guard let current = sink.with({ $0 }) else {
      return
    }
    let subscription = try engine.subscribeJson(observer: JsEvents(emit: current.emit))
    let kept = sink.with { state -> Bool in
      guard state?.owner == current.owner, state?.subscription == nil else {
        return false
      }
      state?.subscription = subscription
      return true
    }
    if !kept {
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
      await self.refreshSessionSettings(engine)
      return nil
    }
  }

  @objc public func uploadFile(
    _ path: String, transferId: String, fileName: String?, userParamsJson: String,
    resolve: @escaping (Any?) -> Void, reject: @escaping (String, String) -> Void
  ) {
    call(resolve, reject) { engine in
      // A file outside the app's container (a document picker's) is kept
      // as a bookmark, which the opener resolves again after a relaunch.
      let source = BookmarkURI.forPath(path) ?? path
      let json = try await engine.uploadFileJson(
        path: source, transferId: transferId, fileName: fileName,
        userParamsJson: userParamsJson)
      self.userStartedWork(engine)
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
      self.userStartedWork(engine)
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
    Task.detached {
      do {
        resolve(try await self.setAsideAndReopen())
      } catch {
        let (code, message) = rejection(of: error)
        reject(code, message)
      }
    }
  }

  /// The spec's `setAsideQueue`: only while the queue cannot be opened as
  /// damaged (`database_corrupt`, which every other call then rejects with);
  /// another open failure is rethrown, and a healthy queue is refused.
  /// The engine moves the file aside and keeps it; the fresh queue opens as
  /// at launch, and the events follow it. Resolves with the kept file's path.
  private func setAsideAndReopen() async throws -> String {
    do {
      _ = try await engine()
    } catch let failure as UploaderError where failure.errorCode() == "database_corrupt" {
      // Only a damaged queue: a full disk or a queue in use is not set aside.
      let aside = try setAsideDatabase(dbPath: Self.queuePath())
      // The file is moved: its path is the answer even if the fresh queue
      // does not open now (another caller's failed open may still hold the
      // slot); the next call opens it.
      do {
        let engine = try await self.engine()
        try subscribeEvents(engine)
      } catch {
        NSLog("s3bgu: the fresh queue or its events are not ready yet: %@", "\(error)")
      }
      return aside
    }
    throw UploaderError.InvalidArgument(
      detail: "the queue opened normally: there is nothing to set aside")
  }

  /// Runs one promise call off the calling thread: the engine's JSON
  /// result resolves it, its `JsError.Rejected(code, detail)` rejects it.
  private func call(
    _ resolve: @escaping (Any?) -> Void, _ reject: @escaping (String, String) -> Void,
    _ body: @escaping (UploadEngine) async throws -> Any?
  ) {
    Task.detached {
      do {
        let engine = try await self.engine()
        resolve(try await body(engine))
      } catch let JsError.Rejected(code, detail) {
        reject(code, detail)
      } catch {
        let (code, message) = rejection(of: error)
        reject(code, message)
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
