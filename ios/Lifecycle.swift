// The app's side of the engine's lifecycle on iOS. This file reports facts
// (where the app is, the background time UIKit grants, the session's
// wake-ups) and maps the engine's answers to UIKit calls; every decision
// (send directly, hand parts to the background session, take them back,
// stop at a checkpoint) is the engine's (rust-core/src/phone.rs).
//
// Never compiled here (no Swift toolchain): see the README's iOS section.

import Foundation
import UIKit

// MARK: the app's state

/// Reports every transition of the app to the engine, from the main thread
/// in the order UIKit tells them, each numbered: the engine ignores a late
/// or repeated one. The state is read from `applicationState` at the moment
/// of each report, never carried across an await.
final class AppLifecycle: NSObject, @unchecked Sendable {
  // Main thread only.
  private var engine: UploadEngine?
  private var seq: UInt64 = 0
  /// The last state seen, for threads that may not ask UIKit (a task's
  /// expiration handler runs on the scheduler's queue).
  private let visible = Locked(false)
  let windows: BackgroundWindows

  init(windows: BackgroundWindows) {
    self.windows = windows
    super.init()
    let center = NotificationCenter.default
    center.addObserver(
      self, selector: #selector(enteredBackground),
      name: UIApplication.didEnterBackgroundNotification, object: nil)
    center.addObserver(
      self, selector: #selector(enteringForeground),
      name: UIApplication.willEnterForegroundNotification, object: nil)
    center.addObserver(
      self, selector: #selector(becameActive),
      name: UIApplication.didBecomeActiveNotification, object: nil)
    center.addObserver(
      self, selector: #selector(protectedDataGoing),
      name: UIApplication.protectedDataWillBecomeUnavailableNotification, object: nil)
    center.addObserver(
      self, selector: #selector(protectedDataBack),
      name: UIApplication.protectedDataDidBecomeAvailableNotification, object: nil)
    windows.onExpire = { [weak self] in self?.reportSuspending() }
  }

  /// On screen as last reported (any thread).
  var isVisible: Bool { visible.with { $0 } }

  /// Main thread: the engine is open and wired; from now on it hears every
  /// transition. Launched in the background (a session wake-up, a relaunch
  /// by the system), it gets a window to hand its parts over in.
  func attach(_ engine: UploadEngine) {
    dispatchPrecondition(condition: .onQueue(.main))
    self.engine = engine
    windows.engine = engine
    if report() == .background {
      windows.beginRun(kind: .backgroundWindow)
    }
  }

  @objc private func enteredBackground() {
    // The time first (synchronously), then the fact: the engine hands its
    // parts over within that window.
    if engine != nil {
      windows.beginRun(kind: .backgroundWindow)
    }
    report()
  }

  @objc private func enteringForeground() {
    // Still `.background` by applicationState at this moment; the
    // notification itself says the app is coming on screen.
    report(.foreground)
    windows.endAll()
  }

  @objc private func becameActive() {
    // Repeats are ignored by state, not by number: the engine keeps the mode.
    report()
  }

  // "Will become unavailable" comes while the data is still readable: the
  // fact reported is the one the notification announces.
  @objc private func protectedDataGoing() {
    reportProtectedData(false)
  }

  @objc private func protectedDataBack() {
    reportProtectedData(true)
  }

  /// Whether files under data protection can be read (the device is
  /// unlocked): while they cannot, the engine makes an upload whose file
  /// will not open wait instead of failing it. The open reports the state
  /// at launch; these notifications report its changes. Main thread.
  private func reportProtectedData(_ available: Bool) {
    try? engine?.setProtectedDataAvailable(available: available)
  }

  /// Reports the state UIKit gives now (or the one a notification
  /// announces); main thread.
  @discardableResult
  private func report(_ announced: AppState? = nil) -> AppState {
    let state: AppState =
      announced
      ?? (UIApplication.shared.applicationState == .background ? .background : .foreground)
    visible.with { $0 = state == .foreground }
    if let engine {
      seq += 1
      try? engine.setAppState(state: state, seq: seq)
    }
    return state
  }

  /// Main thread: a window's time is up and iOS is about to suspend the app:
  /// what is not with the background session stops at a checkpoint (a
  /// continued-processing run, which keeps the process, goes on).
  private func reportSuspending() {
    visible.with { $0 = false }
    guard let engine else {
      return
    }
    seq += 1
    try? engine.setAppState(state: .suspending, seq: seq)
  }

  /// Main thread: a wake-up begins; the state is reported again (it may
  /// have been `suspending` when the app was last suspended).
  func reportAgain() {
    dispatchPrecondition(condition: .onQueue(.main))
    report()
  }
}

// MARK: background time

/// `beginBackgroundTask` windows. A window is begun synchronously, from any
/// thread (UIKit allows it), so that the time exists before anything is
/// dispatched; the engine then runs in it as a `.backgroundWindow` or
/// `.sessionWake` run, and the window ends on the run's verdict, on expiry,
/// or when the app returns to the foreground. Work given with `beforeEnd`
/// (the system's completion handlers) runs on the main thread just before
/// the window ends.
final class BackgroundWindows: @unchecked Sendable {
  private final class Window {
    var task: UIBackgroundTaskIdentifier = .invalid
    var running = false
    var beforeEnd: [() -> Void] = []
  }

  private let open = Locked<[String: Window]>([:])
  private let counter = Locked<UInt64>(0)
  private let engineSlot = Locked<UploadEngine?>(nil)
  /// Main thread, when a window expires (the lifecycle reports `suspending`).
  var onExpire: (() -> Void)?

  var engine: UploadEngine? {
    get { engineSlot.with { $0 } }
    set { engineSlot.with { $0 = newValue } }
  }

  /// Begins a window and returns its id; any thread. Its run starts with
  /// `run(_:kind:)`.
  func begin(_ label: String) -> String {
    let id = counter.with { n -> String in
      n += 1
      return "ios-\(label)-\(n)"
    }
    let window = Window()
    open.with { $0[id] = window }
    let task = UIApplication.shared.beginBackgroundTask(withName: "s3bgu.\(label)") {
      [weak self] in
      // Main thread, shortly before the time is up: stop at a checkpoint
      // (what is committed stays) and end now, or iOS ends the app.
      self?.expire(id)
    }
    let ended = open.with { windows -> Bool in
      guard let current = windows[id] else {
        return true
      }
      current.task = task
      return false
    }
    if ended, task != .invalid {
      // Ended before UIKit answered (foreground meanwhile).
      UIApplication.shared.endBackgroundTask(task)
    }
    return id
  }

  /// Runs the engine in window `id` until its verdict, then ends the window.
  func run(_ id: String, kind: RunKind) {
    guard let engine else {
      end(id)
      return
    }
    let fresh = open.with { windows -> Bool in
      guard let window = windows[id], !window.running else {
        return false
      }
      window.running = true
      return true
    }
    guard fresh else {
      return
    }
    Task.detached { [weak self] in
      // The window's time is the limit; its expiry stops the run.
      _ = try? await engine.runBackground(
        run: BackgroundRun(id: id, kind: kind, timeLimitMs: nil))
      self?.end(id)
    }
  }

  /// A window with its run, begun now.
  @discardableResult
  func beginRun(kind: RunKind) -> String {
    let id = begin(kind == .sessionWake ? "wake" : "window")
    run(id, kind: kind)
    return id
  }

  /// Adds work to do on the main thread just before window `id` ends; done
  /// at once if it has ended.
  func beforeEnd(_ id: String, _ body: @escaping () -> Void) {
    let added = open.with { windows -> Bool in
      guard let window = windows[id] else {
        return false
      }
      window.beforeEnd.append(body)
      return true
    }
    if !added {
      DispatchQueue.main.async(execute: body)
    }
  }

  /// Ends window `id` (any thread; the ending happens on the main thread).
  func end(_ id: String) {
    if Thread.isMainThread {
      finish(id)
    } else {
      DispatchQueue.main.async { self.finish(id) }
    }
  }

  /// Back on screen: the engine sends directly; the windows' runs stop and
  /// the windows end.
  func endAll() {
    let ids = open.with { Array($0.keys) }
    let engine = self.engine
    for id in ids {
      if let engine {
        Task.detached { _ = try? await engine.stopBackgroundRun(id: id, cause: .system) }
      }
      end(id)
    }
  }

  private func expire(_ id: String) {
    onExpire?()
    if let engine {
      Task.detached { _ = try? await engine.stopBackgroundRun(id: id, cause: .timeout) }
    }
    finish(id)
  }

  // Main thread: the window's own work first (the completion handlers iOS
  // gave), then the end of its background time.
  private func finish(_ id: String) {
    guard let window = open.with({ $0.removeValue(forKey: id) }) else {
      return
    }
    for body in window.beforeEnd {
      body()
    }
    if window.task != .invalid {
      UIApplication.shared.endBackgroundTask(window.task)
    }
  }
}

// MARK: the session's wake-ups

/// iOS launches or wakes the app for the background session's events with a
/// completion handler to call once they are handled. In protocol order: the
/// handler is stored before anything else (before the session exists); the
/// drain (the engine's `.sessionWake` run: it commits the reported parts,
/// sends `complete` where a last part landed and hands the next parts over)
/// starts only once the engine is open and reconciled and the session said
/// its events are delivered; the handlers are called on the main thread
/// before the window ends. A handler that arrives after the events finished
/// is drained at once.
final class SessionWakes: @unchecked Sendable {
  private struct State {
    var handlers: [() -> Void] = []
    var eventsFinished = false
    var engine: UploadEngine?
    var draining = false
    var window: String?
  }

  private let state = Locked(State())
  private let windows: BackgroundWindows
  /// Main thread: reports the app's state again (a suspended app's last
  /// report may be `suspending`).
  private let reportAgain: () -> Void

  init(windows: BackgroundWindows, reportAgain: @escaping () -> Void) {
    self.windows = windows
    self.reportAgain = reportAgain
  }

  /// Main thread, from the app delegate: stores the handler, begins the
  /// background time for it.
  func received(_ completion: @escaping () -> Void) {
    // The window is begun under the same lock that stores the handler, so
    // a drain running meanwhile takes both or neither.
    state.with { s in
      s.handlers.append(completion)
      if s.window == nil {
        s.window = windows.begin("wake")
      }
    }
    drainIfReady()
  }

  /// The session's delegate: every event of this wake-up was delivered.
  func eventsFinished() {
    state.with { $0.eventsFinished = true }
    drainIfReady()
  }

  /// The engine is open, its transport set and its tasks reconciled.
  func engineReady(_ engine: UploadEngine) {
    state.with { $0.engine = engine }
    drainIfReady()
  }

  /// The engine could not be opened: the handlers are called, the window ends.
  func openFailed() {
    let (handlers, window) = state.with { s -> ([() -> Void], String?) in
      let taken = (s.handlers, s.window)
      s.handlers = []
      s.window = nil
      s.eventsFinished = false
      return taken
    }
    guard let window else {
      DispatchQueue.main.async { handlers.forEach { $0() } }
      return
    }
    for handler in handlers {
      windows.beforeEnd(window, handler)
    }
    windows.end(window)
  }

  private func drainIfReady() {
    let start = state.with { s -> (String?, [() -> Void])? in
      guard s.engine != nil, s.eventsFinished, !s.handlers.isEmpty, !s.draining else {
        return nil
      }
      s.draining = true
      s.eventsFinished = false
      let taken = (s.window, s.handlers)
      s.handlers = []
      s.window = nil
      return taken
    }
    guard let (known, handlers) = start else {
      return
    }
    let window = known ?? windows.begin("wake")
    for handler in handlers {
      windows.beforeEnd(window, handler)
    }
    // Once this drain's window ends, a handler that came meanwhile drains.
    windows.beforeEnd(window) { [weak self] in
      self?.state.with { $0.draining = false }
      self?.drainIfReady()
    }
    DispatchQueue.main.async { [weak self] in
      self?.reportAgain()
      self?.windows.run(window, kind: .sessionWake)
    }
  }
}
