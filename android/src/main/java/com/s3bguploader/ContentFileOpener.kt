package com.s3bguploader

import android.content.ContentResolver
import android.content.Intent
import android.net.Uri
import android.os.ParcelFileDescriptor
import com.s3bguploader.core.FileOpenException
import com.s3bguploader.core.FileOpener
import com.s3bguploader.core.OpenedFile
import java.io.FileNotFoundException

/**
 * Opens `content://` URIs for the engine, which reads them in place (no
 * copy). Called on an engine thread each time the engine needs the file; the
 * descriptor is detached and from then on owned (and closed) by the engine.
 */
class ContentFileOpener(private val resolver: ContentResolver) : FileOpener {
    override fun openFile(uri: String): OpenedFile {
        val parsed = Uri.parse(uri)
        val pfd: ParcelFileDescriptor = try {
            resolver.openFileDescriptor(parsed, "r")
        } catch (e: SecurityException) {
            throw FileOpenException.PermissionRevoked("the app may no longer read it (${e.javaClass.simpleName})")
        } catch (e: FileNotFoundException) {
            throw FileOpenException.Gone("the provider has no such file")
        } catch (e: IllegalArgumentException) {
            throw FileOpenException.Gone("no provider answers for this URI")
        } catch (e: Exception) {
            throw FileOpenException.Failed("the provider failed (${e.javaClass.simpleName})")
        } ?: throw FileOpenException.Gone("the provider returned nothing")
        // The engine checks that the descriptor allows positioned reads (a
        // pipe fails the upload with file_unreadable). A content URI is
        // never replaced.
        return OpenedFile(pfd.detachFd(), null)
    }

    companion object {
        /**
         * Keeps read access across restarts when the picker granted a
         * persistable permission (ACTION_OPEN_DOCUMENT); other grants last
         * as long as the app's task, and are used as they are.
         */
        fun takePersistablePermission(resolver: ContentResolver, uri: String): Boolean =
            try {
                resolver.takePersistableUriPermission(Uri.parse(uri), Intent.FLAG_GRANT_READ_URI_PERMISSION)
                true
            } catch (e: RuntimeException) {
                // No persistable grant (SecurityException): the upload still
                // works while the app's grant lasts.
                false
            }
    }
}
