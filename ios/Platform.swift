// The platform pieces the engine asks for: the device's TLS trust, files
// kept as security-scoped bookmarks, the network state, and the
// background-task windows around leaving the foreground. Each is the
// smallest adapter of an Apple API to an engine seam.
//
// Never compiled here (no Swift toolchain): see the README's iOS section.

import Foundation
import Network
import Security
import UIKit

// MARK: TLS: the device's trust store (rust-core/src/tls.rs)

enum PlatformTrustInstaller {
  private static let once: Void = {
    do {
      try installPlatformTrust(trust: SecTrustVerifier())
    } catch {
      // Only a trust that accepts any certificate is refused; the engine
      // then trusts extraRootCertificatesPem alone and says so per upload.
      NSLog("s3bgu: platform trust refused: %@", "\(error)")
    }
  }()

  /// Process-wide and before the first handshake: the iOS build of the
  /// engine has no bundled roots.
  static func installOnce() {
    _ = once
  }
}

final class SecTrustVerifier: PlatformTrust, @unchecked Sendable {
  func checkServerTrusted(chainDer: [Data], authType: String, host: String) throws {
    // A thread of its own, during the handshake: evaluation may block
    // (revocation, missing intermediates) without stalling the engine.
    let certificates = chainDer.compactMap { SecCertificateCreateWithData(nil, $0 as CFData) }
    guard !certificates.isEmpty, certificates.count == chainDer.count else {
      throw TrustError.Untrusted(reason: "the server sent a certificate the device cannot read")
    }
    let policy = SecPolicyCreateSSL(true, host as CFString)
    var trust: SecTrust?
    guard SecTrustCreateWithCertificates(certificates as CFArray, policy, &trust) == errSecSuccess,
      let trust
    else {
      throw TrustError.Untrusted(reason: "the certificate chain could not be evaluated")
    }
    var error: CFError?
    if !SecTrustEvaluateWithError(trust, &error) {
      let why = error.map { CFErrorCopyDescription($0) as String } ?? "not trusted"
      throw TrustError.Untrusted(reason: "the device does not trust the certificate of \(host): \(why)")
    }
  }
}

// MARK: files: security-scoped bookmarks (rust-core/src/source.rs)

/// `bookmark://local/<file name>?<bookmark data, base64url>`: the file name
/// in the path (the engine takes the upload's default name from it), the
/// bookmark in the query (the engine leaves queries out of its messages).
/// Standard base64 is accepted as well, for bookmarks made elsewhere.
enum BookmarkURI {
  /// A bookmark URI for a path outside the app's container (where a
  /// document picker's files live), or nil to use the path as it is.
  static func forPath(_ path: String) -> String? {
    guard path.hasPrefix("/") else {
      return nil  // already a URI (bookmark://...): the engine takes it as is
    }
    let url = URL(fileURLWithPath: path).resolvingSymlinksInPath()
    for root in [NSHomeDirectory(), Bundle.main.bundlePath] {
      let inside = URL(fileURLWithPath: root).resolvingSymlinksInPath().path
      if url.path == inside || url.path.hasPrefix(inside + "/") {
        return nil
      }
    }
    let scoped = url.startAccessingSecurityScopedResource()
    defer {
      if scoped {
        url.stopAccessingSecurityScopedResource()
      }
    }
    guard
      let data = try? url.bookmarkData(
        options: [], includingResourceValuesForKeys: nil, relativeTo: nil)
    else {
      return nil  // the engine opens the path itself and reports what fails
    }
    var nameChars = CharacterSet.urlPathAllowed
    nameChars.remove(charactersIn: "/?#")
    let name = url.lastPathComponent.addingPercentEncoding(withAllowedCharacters: nameChars) ?? "file"
    let encoded = data.base64EncodedString()
      .replacingOccurrences(of: "+", with: "-")
      .replacingOccurrences(of: "/", with: "_")
      .replacingOccurrences(of: "=", with: "")
    return "bookmark://local/\(name)?\(encoded)"
  }

  /// The bookmark data of a bookmark URI, or nil.
  static func data(of uri: String) -> Data? {
    guard uri.lowercased().hasPrefix("bookmark://"), let query = uri.firstIndex(of: "?") else {
      return nil
    }
    var text = String(uri[uri.index(after: query)...])
    if let fragment = text.firstIndex(of: "#") {
      text = String(text[..<fragment])
    }
    text = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while text.count % 4 != 0 {
      text.append("=")
    }
    return Data(base64Encoded: text)
  }
}

/// Opens `bookmark://` URIs for the engine, each time it reads the file.
final class BookmarkOpener: FileOpener, @unchecked Sendable {
  func openFile(uri: String) throws -> OpenedFile {
    guard let data = BookmarkURI.data(of: uri) else {
      throw FileOpenError.Failed(reason: "not a bookmark:// URI with bookmark data in its query")
    }
    var stale = false
    let url: URL
    do {
      url = try URL(
        resolvingBookmarkData: data, options: [], relativeTo: nil, bookmarkDataIsStale: &stale)
    } catch let error as NSError
      where error.domain == NSCocoaErrorDomain
      && (error.code == NSFileNoSuchFileError || error.code == NSFileReadNoSuchFileError)
    {
      throw FileOpenError.Gone(reason: "the bookmarked file no longer exists")
    } catch {
      throw FileOpenError.PermissionRevoked(reason: "the bookmark no longer resolves")
    }
    // A stale bookmark still resolved: reading works now; adding the file
    // again stores a fresh one.
    let scoped = url.startAccessingSecurityScopedResource()
    defer {
      if scoped {
        url.stopAccessingSecurityScopedResource()
      }
    }
    // The descriptor keeps its access after the scope ends; the engine owns it.
    let fd = Darwin.open(url.path, O_RDONLY | O_CLOEXEC)
    if fd >= 0 {
      return OpenedFile(fd: fd, replacementUri: nil)
    }
    let code = errno
    switch code {
    case ENOENT, ENOTDIR:
      throw FileOpenError.Gone(reason: "the bookmarked file no longer exists")
    case EACCES, EPERM:
      throw FileOpenError.PermissionRevoked(reason: "the app may no longer read the bookmarked file")
    default:
      throw FileOpenError.Failed(reason: String(cString: strerror(code)))
    }
  }
}

// MARK: network state

/// Online, and whether the path is expensive (cellular, a hotspot) or
/// constrained (Low Data Mode); either counts as metered for the engine's
/// `unmetered` policy.
final class NetworkMonitor {
  private let monitor = NWPathMonitor()
  private let queue = DispatchQueue(label: "s3bgu.network")
  private var started = false

  func start(_ report: @escaping (_ online: Bool, _ metered: Bool) -> Void) {
    queue.sync {
      if started {
        return
      }
      started = true
      monitor.pathUpdateHandler = { path in
        report(path.status == .satisfied, path.isExpensive || path.isConstrained)
      }
      monitor.start(queue: queue)
    }
  }
}

// MARK: background-task windows

/// `beginBackgroundTask` around work that must finish before iOS suspends
/// the app (hand-off on the way out, a session wake-up). The engine runs
/// until idle in the window; when the window's time is up the engine is
/// suspended (what it confirmed is already committed) and the window ends.
final class BackgroundWindows {
  private struct Window {
    var id: UIBackgroundTaskIdentifier
    var done: () -> Void
  }
  // Main-thread only.
  private var open: [Int: Window] = [:]
  private var next = 0

  func run(
    name: String, engine: UploadEngine, mode: PartMode?, done: @escaping () -> Void
  ) {
    DispatchQueue.main.async {
      let key = self.next
      self.next += 1
      let id = UIApplication.shared.beginBackgroundTask(withName: name) {
        // Expiration, on main: end now or iOS ends the app.
        Task.detached { try? await engine.suspend() }
        self.finish(key)
      }
      self.open[key] = Window(id: id, done: done)
      Task.detached {
        if let mode {
          try? await engine.setPartMode(mode: mode)
        }
        _ = try? await engine.runUntilIdle()
        DispatchQueue.main.async { self.finish(key) }
      }
    }
  }

  /// Back in the foreground: the engine goes on directly, the windows end.
  func endAll() {
    DispatchQueue.main.async {
      for key in Array(self.open.keys) {
        self.finish(key)
      }
    }
  }

  private func finish(_ key: Int) {
    guard let window = open.removeValue(forKey: key) else {
      return
    }
    window.done()
    if window.id != .invalid {
      UIApplication.shared.endBackgroundTask(window.id)
    }
  }
}
