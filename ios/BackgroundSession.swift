// The engine's part transport on iOS: a background URLSession uploads the
// staged part files out of process, while the app is suspended or after it
// was terminated. Every task's bytes sent and its end are reported to the
// engine, which commits them and decides what to take back
// (rust-core/src/engine/handoff.rs has the protocol).
//
// Never compiled here (no Swift toolchain): see the README's iOS section.

import Foundation
import Security

final class BackgroundSession: NSObject, PartTransport, @unchecked Sendable {
  /// One session per app, the same identifier at every launch so that iOS
  /// hands the previous process's tasks and events to the new session.
  static let identifier = (Bundle.main.bundleIdentifier ?? "app") + ".s3bgu.parts"

  /// Set once the engine is open, before the session exists.
  struct Callbacks {
    var report: (String, PartTaskResult) -> Void
    var progress: (String, UInt64) -> Void
    var eventsFinished: () -> Void
  }

  private let callbacks = Locked<Callbacks?>(nil)
  private let roots = Locked<[SecCertificate]>([])
  private let delegateQueue: OperationQueue = {
    let queue = OperationQueue()
    queue.maxConcurrentOperationCount = 1
    queue.name = "s3bgu.session"
    return queue
  }()
  private let sessionSlot = Locked<URLSession?>(nil)

  /// Wires the session to the engine; `extraRootsDer` are the configuration's
  /// extra roots (`extraRootCertificatesPem`). Call before the first use.
  /// With no extra roots the session's delegate does not answer trust
  /// challenges at all: iOS evaluates them itself and never has to wake the
  /// app for one. Roots configured later apply to handed-off parts from the
  /// next launch (the session is created once per process).
  func wire(_ callbacks: Callbacks?, extraRootsDer: [Data]) {
    self.callbacks.with { $0 = callbacks }
    let certificates = extraRootsDer.compactMap { SecCertificateCreateWithData(nil, $0 as CFData) }
    roots.with { $0 = certificates }
  }

  /// Created on first use (after `wire`), thread-safe.
  private var session: URLSession {
    sessionSlot.with { slot -> URLSession in
      if let session = slot {
        return session
      }
      let config = URLSessionConfiguration.background(withIdentifier: Self.identifier)
      config.sessionSendsLaunchEvents = true
      // The engine hands parts over on screen (tasks made while the app is
      // active start at once); this asks for no extra delay beyond that.
      config.isDiscretionary = false
      let events = SessionEvents(owner: self)
      let delegate: URLSessionDelegate =
        roots.with { $0.isEmpty } ? events : TrustingSessionEvents(owner: self)
      let session = URLSession(
        configuration: config, delegate: delegate, delegateQueue: delegateQueue)
      slot = session
      return session
    }
  }

  // MARK: PartTransport (engine thread: return at once)

  func submit(task: PartTask) throws {
    guard let url = URL(string: task.url) else {
      // Never echo the URL: it is a bearer secret.
      throw SubmitError.Refused(reason: "the part URL is not a valid URL")
    }
    var request = URLRequest(url: url)
    request.httpMethod = "PUT"
    // The engine's network policy, per task (it re-submits on a change).
    request.allowsExpensiveNetworkAccess = task.allowMetered
    request.allowsConstrainedNetworkAccess = task.allowMetered
    let upload = session.uploadTask(with: request, fromFile: URL(fileURLWithPath: task.filePath))
    upload.taskDescription = task.taskId
    upload.countOfBytesClientExpectsToSend = Int64(clamping: task.length)
    upload.countOfBytesClientExpectsToReceive = Int64(SessionEvents.maxBody)
    if task.earliestBeginMs > 0 {
      upload.earliestBeginDate = Date(
        timeIntervalSince1970: TimeInterval(task.earliestBeginMs) / 1000)
    }
    upload.resume()
  }

  func cancel(taskId: String) {
    cancel(taskIds: [taskId])
  }

  func cancel(taskIds: [String]) {
    if taskIds.isEmpty {
      return
    }
    let ids = Set(taskIds)
    session.getAllTasks { tasks in
      for task in tasks where ids.contains(task.taskDescription ?? "") {
        task.cancel()
      }
    }
  }

  /// The task ids the session still has (for the engine's reconciliation).
  /// Creates the session: iOS then delivers the events it holds.
  func liveTaskIds() async -> [String] {
    await withCheckedContinuation { continuation in
      session.getAllTasks { tasks in
        continuation.resume(returning: tasks.compactMap { $0.taskDescription })
      }
    }
  }

  fileprivate var current: Callbacks? { callbacks.with { $0 } }
  fileprivate var extraRoots: [SecCertificate] { roots.with { $0 } }
}

/// The session's delegate (serial delegate queue). No trust challenge
/// handling here, on purpose: see `BackgroundSession.wire`.
private class SessionEvents: NSObject, URLSessionDataDelegate, @unchecked Sendable {
  /// The start of an error body the engine needs (an expired URL is a 400
  /// or 403 whose body says so); more is never kept.
  static let maxBody = 4096

  weak var owner: BackgroundSession?
  private var bodies: [Int: Data] = [:]

  init(owner: BackgroundSession) {
    self.owner = owner
  }

  func urlSession(
    _ session: URLSession, task: URLSessionTask, didSendBodyData bytesSent: Int64,
    totalBytesSent: Int64, totalBytesExpectedToSend: Int64
  ) {
    // A task that sent bytes is not taken back when the app returns.
    guard let taskId = task.taskDescription, totalBytesSent > 0 else {
      return
    }
    owner?.current?.progress(taskId, UInt64(totalBytesSent))
  }

  func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
    var body = bodies[dataTask.taskIdentifier] ?? Data()
    if body.count < Self.maxBody {
      body.append(data.prefix(Self.maxBody - body.count))
      bodies[dataTask.taskIdentifier] = body
    }
  }

  func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
    let body = bodies.removeValue(forKey: task.taskIdentifier) ?? Data()
    guard let taskId = task.taskDescription, let callbacks = owner?.current else {
      // No engine in this process yet: the task is reconciled at the next open.
      return
    }
    let result: PartTaskResult
    if let response = task.response as? HTTPURLResponse {
      if let asked = task.originalRequest?.url, let reached = task.currentRequest?.url,
        asked != reached
      {
        // Background sessions follow redirects without asking their
        // delegate; the contract fails a part that is redirected. The
        // status before the redirect is not known: 300 stands for it.
        result = .response(
          status: 300, etag: nil, retryAfter: nil,
          body: "the part upload was redirected (iOS followed it); configure the final storage URL")
      } else {
        result = .response(
          status: UInt16(clamping: response.statusCode),
          etag: response.value(forHTTPHeaderField: "ETag"),
          retryAfter: response.value(forHTTPHeaderField: "Retry-After"),
          body: String(decoding: body, as: UTF8.self))
      }
    } else if let error = error as NSError?,
      error.domain == NSURLErrorDomain, error.code == NSURLErrorCancelled
    {
      result = .cancelled
    } else if let error = error as NSError? {
      // Domain, code and description only: userInfo holds the URL.
      result = .noResponse(
        message: "\(error.domain) \(error.code): \(error.localizedDescription)")
    } else {
      result = .noResponse(message: "the upload ended without a response")
    }
    callbacks.report(taskId, result)
  }

  func urlSessionDidFinishEvents(forBackgroundURLSession session: URLSession) {
    owner?.current?.eventsFinished()
  }
}

/// The delegate when extra roots are configured: it answers server-trust
/// challenges with the system's roots plus those.
private final class TrustingSessionEvents: SessionEvents, @unchecked Sendable {
  func urlSession(
    _ session: URLSession, didReceive challenge: URLAuthenticationChallenge,
    completionHandler: @escaping (URLSession.AuthChallengeDisposition, URLCredential?) -> Void
  ) {
    let roots = owner?.extraRoots ?? []
    guard challenge.protectionSpace.authenticationMethod == NSURLAuthenticationMethodServerTrust,
      let trust = challenge.protectionSpace.serverTrust, !roots.isEmpty
    else {
      completionHandler(.performDefaultHandling, nil)
      return
    }
    // The configured roots as anchors, the system's still trusted; the
    // host name stays part of the evaluation (the SSL policy is already set).
    SecTrustSetAnchorCertificates(trust, roots as CFArray)
    SecTrustSetAnchorCertificatesOnly(trust, false)
    if SecTrustEvaluateWithError(trust, nil) {
      completionHandler(.useCredential, URLCredential(trust: trust))
    } else {
      completionHandler(.cancelAuthenticationChallenge, nil)
    }
  }
}
