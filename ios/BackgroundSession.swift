// The engine's part transport on iOS: a background URLSession uploads the
// staged part files out of process, while the app is suspended or after it
// was terminated, and every task's end is reported to the engine, which
// commits it (rust-core/src/engine/handoff.rs has the protocol).
//
// Never compiled here (no Swift toolchain): see the README's iOS section.

import Foundation
import Security

final class BackgroundSession: NSObject, PartTransport, URLSessionDataDelegate,
  @unchecked Sendable
{
  /// One session per app, the same identifier at every launch so that iOS
  /// hands the previous process's tasks and events to the new session.
  static let identifier = (Bundle.main.bundleIdentifier ?? "app") + ".s3bgu.parts"

  /// The start of an error body the engine needs (an expired URL is a 400
  /// or 403 whose body says so); more is never kept.
  private static let maxBody = 4096

  /// Set once the engine is open (before the session exists).
  var onReport: ((String, PartTaskResult) -> Void)?
  var onEventsFinished: (() -> Void)?

  /// The configuration's extra roots (`extraRootCertificatesPem`), trusted
  /// beside the system's, as the engine trusts them for its own requests.
  var extraRoots: [Data] {
    get { state.with { $0.extraRoots.map { SecCertificateCopyData($0) as Data } } }
    set {
      let certificates = newValue.compactMap { SecCertificateCreateWithData(nil, $0 as CFData) }
      state.with { $0.extraRoots = certificates }
    }
  }

  private struct State {
    var extraRoots: [SecCertificate] = []
    var bodies: [Int: Data] = [:]
    var systemCompletions: [() -> Void] = []
  }
  private let state = Locked(State())
  private let delegateQueue: OperationQueue = {
    let queue = OperationQueue()
    queue.maxConcurrentOperationCount = 1
    queue.name = "s3bgu.session"
    return queue
  }()

  /// Created on first use, which comes after `onReport` is set: the
  /// session's delegate calls (reports) need the engine. Thread-safe, unlike
  /// a lazy property.
  private let sessionSlot = Locked<URLSession?>(nil)
  private var session: URLSession {
    sessionSlot.with { slot -> URLSession in
      if let session = slot {
        return session
      }
      let config = URLSessionConfiguration.background(withIdentifier: Self.identifier)
      config.sessionSendsLaunchEvents = true
      // The person asked for these uploads: not at the system's leisure.
      config.isDiscretionary = false
      let session = URLSession(
        configuration: config, delegate: self, delegateQueue: delegateQueue)
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
    upload.countOfBytesClientExpectsToReceive = Int64(Self.maxBody)
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
  func liveTaskIds() async -> [String] {
    await withCheckedContinuation { continuation in
      session.getAllTasks { tasks in
        continuation.resume(returning: tasks.compactMap { $0.taskDescription })
      }
    }
  }

  // MARK: the app delegate's completion handler

  func addSystemCompletion(_ completion: @escaping () -> Void) {
    state.with { $0.systemCompletions.append(completion) }
  }

  /// Calls the handlers iOS gave with the session's events (main queue, as
  /// UIKit expects), once each.
  func callSystemCompletions() {
    let completions = state.with { state -> [() -> Void] in
      let all = state.systemCompletions
      state.systemCompletions = []
      return all
    }
    if completions.isEmpty {
      return
    }
    DispatchQueue.main.async {
      for completion in completions {
        completion()
      }
    }
  }

  // MARK: URLSessionDataDelegate (serial delegate queue)

  func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
    state.with { state in
      var body = state.bodies[dataTask.taskIdentifier] ?? Data()
      if body.count < Self.maxBody {
        body.append(data.prefix(Self.maxBody - body.count))
        state.bodies[dataTask.taskIdentifier] = body
      }
    }
  }

  func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
    let body = state.with { $0.bodies.removeValue(forKey: task.taskIdentifier) } ?? Data()
    guard let taskId = task.taskDescription else {
      return
    }
    let result: PartTaskResult
    if let response = task.response as? HTTPURLResponse {
      result = .response(
        status: UInt16(clamping: response.statusCode),
        etag: response.value(forHTTPHeaderField: "ETag"),
        retryAfter: response.value(forHTTPHeaderField: "Retry-After"),
        body: String(decoding: body, as: UTF8.self))
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
    onReport?(taskId, result)
  }

  func urlSession(
    _ session: URLSession, didReceive challenge: URLAuthenticationChallenge,
    completionHandler: @escaping (URLSession.AuthChallengeDisposition, URLCredential?) -> Void
  ) {
    let roots = state.with { $0.extraRoots }
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

  func urlSessionDidFinishEvents(forBackgroundURLSession session: URLSession) {
    onEventsFinished?()
  }
}
