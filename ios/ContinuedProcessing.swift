// iOS 26+: a BGContinuedProcessingTask, started by the person's action
// (uploadFile or resume in the foreground), keeps the engine sending
// directly after the app leaves the foreground, with the system's progress
// UI: the notification templates rendered by the engine, progress in bytes.
// When it expires (time, resources, or the person stops it in that UI) the
// engine switches to hand-off and the background session carries on.
//
// Never compiled here (no Swift toolchain): see the README's iOS section.

import BackgroundTasks
import Foundation
import UIKit

protocol ContinuedProcessingProtocol: AnyObject {
  /// A task is submitted or running.
  var isActive: Bool { get }
  func beginIfNeeded(engine: UploadEngine, onExpire: @escaping () -> Void)
}

// BGContinuedProcessingTask exists only in the iOS 26 SDK (Xcode 26, Swift
// 6.2): `@available` does not hide a type the SDK lacks, so older Xcode
// builds leave the class out and the module runs without it.
#if compiler(>=6.2)
@available(iOS 26.0, *)
final class ContinuedProcessing: ContinuedProcessingProtocol, @unchecked Sendable {
  /// Info.plist `BGTaskSchedulerPermittedIdentifiers` holds
  /// `$(PRODUCT_BUNDLE_IDENTIFIER).s3bgu.*`; each task gets a fresh suffix
  /// (a handler is registered once per identifier).
  private static let prefix = (Bundle.main.bundleIdentifier ?? "app") + ".s3bgu.upload."

  private enum Phase {
    case idle
    case submitted
    case running(BGContinuedProcessingTask)
  }
  private let phase = Locked(Phase.idle)

  var isActive: Bool {
    phase.with { phase -> Bool in
      if case .idle = phase {
        return false
      }
      return true
    }
  }

  func beginIfNeeded(engine: UploadEngine, onExpire: @escaping () -> Void) {
    let claimed = phase.with { phase -> Bool in
      guard case .idle = phase else {
        return false
      }
      phase = .submitted
      return true
    }
    guard claimed else {
      return
    }
    Task.detached {
      let (title, subtitle) = await Self.texts(engine)
      let submitted = await MainActor.run { () -> Bool in
        // Only from the foreground, as the person's action.
        guard UIApplication.shared.applicationState == .active else {
          return false
        }
        let identifier = Self.prefix + UUID().uuidString.lowercased()
        let registered = BGTaskScheduler.shared.register(
          forTaskWithIdentifier: identifier, using: nil
        ) { task in
          guard let task = task as? BGContinuedProcessingTask else {
            task.setTaskCompleted(success: false)
            return
          }
          self.run(task, engine: engine, onExpire: onExpire)
        }
        guard registered else {
          return false
        }
        let request = BGContinuedProcessingTaskRequest(
          identifier: identifier, title: title, subtitle: subtitle)
        // Now or not at all: queued for later it would start in the background.
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
        self.phase.with { phase in
          if case .submitted = phase {
            phase = .idle
          }
        }
      }
    }
  }

  private func run(
    _ task: BGContinuedProcessingTask, engine: UploadEngine, onExpire: @escaping () -> Void
  ) {
    phase.with { $0 = .running(task) }
    task.expirationHandler = { [weak self] in
      onExpire()
      self?.finish(task, success: false)
    }
    Task.detached {
      let progress = Task.detached {
        while !Task.isCancelled {
          await Self.update(task, engine: engine)
          try? await Task.sleep(nanoseconds: 1_000_000_000)
        }
      }
      let reason = try? await engine.runUntilIdle()
      progress.cancel()
      await Self.update(task, engine: engine)
      self.finish(task, success: reason == .idle)
      // Stopped short (paused, offline) with the app already in the
      // background: hand the rest over before the app is suspended.
      let background = await MainActor.run {
        UIApplication.shared.applicationState == .background
      }
      if background, reason != .idle {
        onExpire()
      }
    }
  }

  private func finish(_ task: BGContinuedProcessingTask, success: Bool) {
    let mine = phase.with { phase -> Bool in
      guard case .running(let current) = phase, current === task else {
        return false
      }
      phase = .idle
      return true
    }
    if mine {
      task.setTaskCompleted(success: success)
    }
  }

  /// Bytes for the system's progress, texts from the templates.
  private static func update(_ task: BGContinuedProcessingTask, engine: UploadEngine) async {
    guard let summary = try? await engine.summary(transferId: nil) else {
      return
    }
    task.progress.totalUnitCount = Int64(clamping: summary.totalBytes)
    task.progress.completedUnitCount = Int64(clamping: summary.uploadedBytes)
    let (title, subtitle) = await texts(engine, summary: summary)
    task.updateTitle(title, subtitle: subtitle)
  }

  /// The engine renders the configured templates, or its defaults.
  private static func texts(
    _ engine: UploadEngine, summary: TransferSummary? = nil
  ) async -> (String, String) {
    let config = try? await engine.config()
    let current: TransferSummary?
    if let summary {
      current = summary
    } else {
      current = try? await engine.summary(transferId: nil)
    }
    guard let current else {
      return ("Uploading", "")
    }
    let content = notificationContent(
      titleTemplate: config?.notificationTitle, textTemplate: config?.notificationText,
      summary: current)
    return (content.title, content.text)
  }
}
#endif
