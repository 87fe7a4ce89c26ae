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
 * copy). Called on an engine thread each time the engine needs the file; a
 * duplicate of the provider's descriptor is detached and from then on owned
 * (and closed) by the engine.
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
        // The descriptor a provider returns holds a reference to the provider
        // (its process stays bound) until it is closed, and detaching its fd
        // never closes it: hand over a duplicate and close the original now.
        val fd = try {
            pfd.dup().detachFd()
        } catch (e: Exception) {
            throw FileOpenException.Failed("the descriptor could not be duplicated (${e.javaClass.simpleName})")
        } finally {
            runCatching { pfd.close() }
        }
        // The engine checks that the descriptor allows positioned reads (a
        // pipe fails the upload with file_unreadable). A content URI is
        // never replaced.
        return OpenedFile(fd, null)
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

        /**
         * Gives back the persistable read grant taken for [uri] (the app
         * may hold 128 of them, 512 from Android 11). Call it when
         * no upload of that URI is left (forgotten or cancelled). False when
         * no such grant is held.
         */
        fun releasePersistablePermission(resolver: ContentResolver, uri: String): Boolean =
            try {
                val parsed = Uri.parse(uri)
                if (resolver.persistedUriPermissions.none { it.uri == parsed && it.isReadPermission }) {
                    false
                } else {
                    resolver.releasePersistableUriPermission(parsed, Intent.FLAG_GRANT_READ_URI_PERMISSION)
                    true
                }
            } catch (e: RuntimeException) {
                false
            }
    }
}
