// The platform pieces the engine asks for: the device's TLS trust, the
// app's directories as stable roots, files kept as security-scoped
// bookmarks, and the network state. Each is the smallest adapter of an
// Apple API to an engine seam.
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

// MARK: files: stable roots and security-scoped bookmarks (rust-core/src/roots.rs, source.rs)

/// The app's directories (and its bundle) under the names the engine stores
/// paths by: iOS moves the app's container with every update, so a file
/// under one of these is kept as `<root>/<path under it>` and found again
/// after it.
enum AppRoots {
  static func current() -> [FileRoot] {
    let fm = FileManager.default
    var roots: [(String, String)] = []
    let named: [(String, FileManager.SearchPathDirectory)] = [
      ("documents", .documentDirectory), ("library", .libraryDirectory),
      ("caches", .cachesDirectory),
    ]
    for (name, directory) in named {
      if let url = fm.urls(for: directory, in: .userDomainMask).first {
        roots.append((name, url.path))
      }
    }
    roots.append(("tmp", NSTemporaryDirectory()))
    roots.append(("bundle", Bundle.main.bundlePath))
    // Resolved as `FileSource` resolves the files (on a device that drops
    // a leading /private): the engine compares paths component by component.
    return roots.map { name, path in
      FileRoot(name: name, path: URL(fileURLWithPath: path).resolvingSymlinksInPath().path)
    }
  }
}

/// What the engine is given for a file the app passes to `uploadFile`.
enum FileSource {
  /// A path or `file://` URL inside the app's container is given as a path
  /// (the engine keeps it relative to its root); a `bookmark://` URI (made
  /// from a picker's bookmark) is checked and given as it is; a file
  /// outside the container is kept as a security-scoped bookmark made now,
  /// or refused: a raw path there would not open after a relaunch.
  static func forUpload(_ given: String) throws -> String {
    if given.lowercased().hasPrefix("bookmark://") {
      guard bookmarkData(uri: given) != nil else {
        throw UploaderError.InvalidArgument(
          detail: "a bookmark:// URI needs the bookmark data (base64) in its query")
      }
      return given
    }
    let url: URL
    if given.hasPrefix("/") {
      url = URL(fileURLWithPath: given)
    } else if let parsed = URL(string: given), parsed.isFileURL {
      url = parsed
    } else {
      // Another scheme: the engine says what it makes of it.
      return given
    }
    let resolved = url.resolvingSymlinksInPath()
    for root in [NSHomeDirectory(), Bundle.main.bundlePath] {
      let inside = URL(fileURLWithPath: root).resolvingSymlinksInPath().path
      if resolved.path == inside || resolved.path.hasPrefix(inside + "/") {
        return resolved.path
      }
    }
    return try bookmark(for: url)
  }

  /// A `bookmark://` URI for a file outside the container, made while the
  /// URL's security scope (a picker's URL carries it) is open.
  private static func bookmark(for url: URL) throws -> String {
    let scoped = url.startAccessingSecurityScopedResource()
    defer {
      if scoped {
        url.stopAccessingSecurityScopedResource()
      }
    }
    do {
      let data = try url.bookmarkData(options: [], includingResourceValuesForKeys: nil, relativeTo: nil)
      return bookmarkUri(fileName: url.lastPathComponent, bookmark: data)
    } catch {
      throw UploaderError.FileUnreadable(
        detail: "\(url.lastPathComponent) is outside the app's container and no bookmark could be "
          + "kept for it: pass the picker's own bookmark (bookmark://), or copy the file into the "
          + "app's container first")
    }
  }
}

/// Opens `bookmark://` URIs for the engine, each time it reads the file. A
/// stale bookmark that still resolves is replaced by a fresh one, which the
/// engine stores in its place.
final class BookmarkOpener: FileOpener, @unchecked Sendable {
  func openFile(uri: String) throws -> OpenedFile {
    guard let data = bookmarkData(uri: uri) else {
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
    let scoped = url.startAccessingSecurityScopedResource()
    defer {
      if scoped {
        url.stopAccessingSecurityScopedResource()
      }
    }
    var replacement: String?
    if stale,
      let fresh = try? url.bookmarkData(options: [], includingResourceValuesForKeys: nil, relativeTo: nil)
    {
      replacement = bookmarkUri(
        fileName: bookmarkFileName(uri: uri) ?? url.lastPathComponent, bookmark: fresh)
    }
    // The descriptor keeps its access after the scope ends; the engine owns it.
    let fd = Darwin.open(url.path, O_RDONLY | O_CLOEXEC)
    if fd >= 0 {
      return OpenedFile(fd: fd, replacementUri: replacement)
    }
    let code = errno
    switch code {
    case ENOENT, ENOTDIR:
      throw FileOpenError.Gone(reason: "the bookmarked file no longer exists")
    case EACCES, EPERM:
      // Also a file protected while the device is locked: the engine knows
      // whether protected data is available and waits if it is not.
      throw FileOpenError.PermissionRevoked(reason: "the app may not read the bookmarked file now")
    default:
      throw FileOpenError.Failed(reason: String(cString: strerror(code)))
    }
  }
}

// MARK: network state

/// Online, and whether the path is expensive (cellular, a hotspot) or
/// constrained (Low Data Mode); either counts as metered for the engine's
/// `unmetered` policy. One monitor per process; the engine it reports to
/// may change (a queue set aside and opened afresh).
final class NetworkMonitor: @unchecked Sendable {
  private let monitor = NWPathMonitor()
  // Everything below on `queue`, where the monitor calls back too.
  private let queue = DispatchQueue(label: "s3bgu.network")
  private var started = false
  private var last: NWPath?
  private var target: ((_ online: Bool, _ metered: Bool) -> Void)?

  /// Reports the path to `report` from now on: the last one seen at once,
  /// then every change.
  func reportTo(_ report: @escaping (_ online: Bool, _ metered: Bool) -> Void) {
    queue.async {
      self.target = report
      if let path = self.last {
        Self.send(path, to: report)
      }
      if !self.started {
        self.started = true
        self.monitor.pathUpdateHandler = { [weak self] path in
          self?.last = path
          if let target = self?.target {
            Self.send(path, to: target)
          }
        }
        self.monitor.start(queue: self.queue)
      }
    }
  }

  private static func send(_ path: NWPath, to report: (_ online: Bool, _ metered: Bool) -> Void) {
    report(path.status == .satisfied, path.isExpensive || path.isConstrained)
  }
}
