package com.s3bguploader

import android.content.Context
import android.util.Log
import com.s3bguploader.core.UploadEngine
import com.s3bguploader.core.UploaderException
import com.s3bguploader.core.installPlatformTrust
import kotlinx.coroutines.runBlocking
import java.io.File

/**
 * The one engine of the process, shared by the TurboModule, the jobs, the
 * foreground service and the boot receiver. Opened on first use from any of
 * them (no JavaScript needed: the configuration is persisted with the queue)
 * in `noBackupFilesDir`, so the queue never travels in a backup to another
 * device where its files do not exist.
 */
object S3BgUploaderRuntime {
    internal const val TAG = "S3BgUploader"

    @Volatile private var engine: UploadEngine? = null
    private var network: NetworkMonitor? = null

    fun engine(context: Context): UploadEngine {
        engine?.let { return it }
        return synchronized(this) {
            engine ?: open(context.applicationContext).also { engine = it }
        }
    }

    /** The queue database's path (tests and diagnostics). */
    fun databaseFile(context: Context): File = File(File(context.applicationContext.noBackupFilesDir, "s3bgu"), "queue.db")

    private fun open(app: Context): UploadEngine {
        // Before the first handshake: the engine carries no root store of
        // its own on Android. Only a trust that accepts any certificate is
        // refused; the engine then trusts extraRootCertificatesPem alone.
        try {
            installPlatformTrust(AndroidTrust.fromPlatform())
        } catch (e: UploaderException) {
            Log.e(TAG, "platform trust refused: ${e.message}")
        }
        val db = databaseFile(app)
        db.parentFile?.mkdirs()
        val opened = UploadEngine.open(db.path, true)
        // URIs in the queue wait for the opener: register it right away.
        opened.setFileOpener(ContentFileOpener(app.contentResolver))
        network = NetworkMonitor.start(app, opened)
        Log.i(TAG, "engine opened")
        return opened
    }

    /** Closes the engine (tests: each gets a fresh application and queue). */
    internal fun resetForTests() {
        synchronized(this) {
            network?.stop()
            network = null
            engine?.let { e ->
                runBlocking { runCatching { e.shutdown() } }
                e.close()
            }
            engine = null
        }
    }
}
