// iOS 26+: a BGContinuedProcessingTask, requested at the person's action
// (uploadFile or resume on screen) when the engine says work remains. While
// it runs, the engine counts it as a long run and sends directly, also in
// the background; iOS shows its progress (the engine's OS progress: the
// rendered notification texts and the run's bytes). When it expires the
// parts go to the background session within a background window begun
// first; when the person stops it while the app is on screen, the uploads
// pause as stopped by the person (`user_stopped`) until resumed.
//
// Never compiled here (no Swift toolchain): see the README's iOS section.

import BackgroundTasks
import Foundation
import UIKit

protocol ContinuedProcessingProtocol: AnyObject {
  /// After the person's action on screen: requests the task if the engine
  /// says work remains and none is running or starting.
  func requestIfUseful(engine: UploadEngine) async
}

// BGContinuedProcessingTask exists only in the iOS 26 SDK (Xcode 26, Swift
// 6.2): `@available` does not hide a type the SDK lacks, so older Xcode
// builds leave the class out and the module runs without it.
#if compiler(>=6.2)
  @available(iOS 26.0, *)
  final class ContinuedProcessing: ContinuedProcessingProtocol, @unchecked Sendable {
    /// Info.plist `BGTaskSchedulerPermittedIdentifiers` holds
    /// `$(PRODUCT_BUNDLE_IDENTIFIER).s3bgu.*`. One identifier, registered
    /// once per process: only one task runs at a time.
    static let identifier = (Bundle.main.bundleIdentifier ?? "app") + ".s3bgu.upload"
    /// A submission whose launch handler has not come by then counts as
    /// refused; the background window and the session carry the parts.
    private static let startBound: TimeInterval = 5

    private enum Phase {
      case idle
      case submitted(UUID)
      case running(BGContinuedProcessingTask)
    }

    private let phase = Locked(Phase.idle)
    private let registered = Locked(false)
    private let engineSlot = Locked<UploadEngine?>(nil)
    private let lifecycle: AppLifecycle

    init(lifecycle: AppLifecycle) {
      self.lifecycle = lifecycle
    }

    func requestIfUseful(engine: UploadEngine) async {
      engineSlot.with { $0 = engine }
      // The engine's answer: unfinished uploads this run could send.
      guard let progress = try? await engine.backgroundProgress(id: Self.identifier),
        progress.workRemains
      else {
        return
      }
      let attempt = UUID()
      let claimed = phase.with { phase -> Bool in
        guard case .idle = phase else {
          return false
        }
        phase = .submitted(attempt)
        return true
      }
      guard claimed else {
        return
      }
      let submitted = await MainActor.run { () -> Bool in
        // Only on screen: the request must come from the person's action.
        guard UIApplication.shared.applicationState == .active, self.registerOnce() else {
          return false
        }
        let request = BGContinuedProcessingTaskRequest(
          identifier: Self.identifier, title: progress.title, subtitle: progress.text)
        // Now or not at all: queued, it would start later in the background.
        request.strategy = .fail
        do {
          try BGTaskScheduler.shared.submit(request)
          return true
        } catch {
          NSLog("s3bgu: continued processing refused: %@", "\(error)")
          return false
        }
      }
      if !submitted {
        backToIdle(from: attempt)
        return
      }
      // Never started within the bound: hand-off as if it had been refused.
      DispatchQueue.global().asyncAfter(deadline: .now() + Self.startBound) { [weak self] in
        self?.backToIdle(from: attempt)
      }
    }

    private func backToIdle(from attempt: UUID) {
      phase.with { phase in
        if case .submitted(let current) = phase, current == attempt {
          phase = .idle
        }
      }
    }

    /// Main thread. The launch handler is registered once; the scheduler
    /// keeps it for the process's life.
    private func registerOnce() -> Bool {
      registered.with { done -> Bool in
        if done {
          return true
        }
        done = BGTaskScheduler.shared.register(
          forTaskWithIdentifier: Self.identifier, using: nil
        ) { [weak self] task in
          guard let self, let task = task as? BGContinuedProcessingTask else {
            task.setTaskCompleted(success: false)
            return
          }
          self.launched(task)
        }
        return done
      }
    }

    private func launched(_ task: BGContinuedProcessingTask) {
      let expected = phase.with { phase -> Bool in
        // On screen it is taken even after the bound; off screen the app
        // has already handed its parts over and the session carries them.
        if case .running = phase {
          return false
        }
        guard lifecycle.isVisible else {
          return false
        }
        phase = .running(task)
        return true
      }
      guard expected, let engine = engineSlot.with({ $0 }) else {
        task.setTaskCompleted(success: false)
        return
      }
      task.expirationHandler = { [weak self, weak task] in
        guard let self, let task else {
          return
        }
        self.expired(task, engine: engine)
      }
      let id = Self.identifier
      Task.detached { [weak self] in
        let progress = Task.detached {
          while !Task.isCancelled {
            if let p = try? await engine.backgroundProgress(id: id) {
              Self.show(p, on: task)
            }
            try? await Task.sleep(nanoseconds: 1_000_000_000)
          }
        }
        let verdict = try? await engine.runBackground(
          run: BackgroundRun(id: id, kind: .continuedProcessing, timeLimitMs: nil))
        progress.cancel()
        if let p = try? await engine.backgroundProgress(id: id) {
          Self.show(p, on: task)
        }
        guard let self else {
          return
        }
        // Ended off screen with work left: the time to hand it over first
        // (unless its expiration did that already).
        if self.isRunning(task), verdict != .finished, !self.lifecycle.isVisible {
          self.lifecycle.windows.beginRun(kind: .backgroundWindow)
        }
        self.complete(task, success: verdict == .finished)
      }
    }

    /// Time is up, resources ran short, or the person stopped it in the
    /// system's UI. On screen only the person does that: the engine's
    /// user stop. Off screen, a background window is begun first (the time
    /// to hand the parts over), then the task completes.
    private func expired(_ task: BGContinuedProcessingTask, engine: UploadEngine) {
      let byPerson = lifecycle.isVisible
      if !byPerson {
        lifecycle.windows.beginRun(kind: .backgroundWindow)
      }
      let cause: StopCause = byPerson ? .user : .system
      Task.detached { _ = try? await engine.stopBackgroundRun(id: Self.identifier, cause: cause) }
      complete(task, success: false)
    }

    private func isRunning(_ task: BGContinuedProcessingTask) -> Bool {
      phase.with { phase -> Bool in
        if case .running(let current) = phase {
          return current === task
        }
        return false
      }
    }

    private func complete(_ task: BGContinuedProcessingTask, success: Bool) {
      let mine = phase.with { phase -> Bool in
        guard case .running(let current) = phase, current === task else {
          return false
        }
        phase = .idle
        return true
      }
      if mine {
        task.expirationHandler = nil
        task.setTaskCompleted(success: success)
      }
    }

    /// The engine's OS progress on the system's UI: bytes of this run.
    private static func show(_ p: OsProgress, on task: BGContinuedProcessingTask) {
      // Nothing measurable yet: a negative total makes the progress indeterminate.
      task.progress.totalUnitCount = p.indeterminate ? -1 : Int64(clamping: p.totalBytes)
      task.progress.completedUnitCount = Int64(clamping: p.doneBytes)
      task.updateTitle(p.title, subtitle: p.text)
    }
  }
#endif
