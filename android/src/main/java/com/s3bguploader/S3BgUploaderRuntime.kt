package com.s3bguploader

import android.app.Application
import android.content.Context
import android.util.Log
import com.s3bguploader.core.AppState
import com.s3bguploader.core.FileRoot
import com.s3bguploader.core.JsException
import com.s3bguploader.core.UploadEngine
import com.s3bguploader.core.UploaderException
import com.s3bguploader.core.installPlatformTrust
import com.s3bguploader.core.setAsideDatabase
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Deferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.async
import kotlinx.coroutines.runBlocking
import java.io.File

/**
 * The one engine of the process, shared by the TurboModule, the jobs, the
 * foreground service and the boot receiver. [start] opens it once per
 * process on a background thread (loading the library, opening and
 * migrating the queue, loading it: hundreds of milliseconds for a big
 * queue), so no caller blocks React Native's threads or the main thread;
 * [engine] waits for it in a coroutine. The queue lives in
 * `noBackupFilesDir`, so it never travels in a backup to a device where its
 * files do not exist.
 *
 * The engine decides when to send (ARCHITECTURE.md, "The lifecycle is the
 * engine's"): this object only reports facts to it, the app's visibility
 * (with an increasing number, so a late report changes nothing), the
 * network ([NetworkMonitor]) and the app's directories, and opens it with
 * `start = false`, so nothing is sent before those facts are known, nor
 * outside the foreground, a job or the foreground service.
 */
object S3BgUploaderRuntime {
    internal const val TAG = "S3BgUploader"

    /** The code the engine gives a damaged queue; [setAsideQueue] is the way out. */
    const val DATABASE_CORRUPT = "database_corrupt"

    /**
     * Why the engine could not be opened, with the engine's stable code:
     * every call rejects with it, and nothing crashes the app.
     */
    class OpenFailure(val code: String, val detail: String) : Exception("$code: $detail")

    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.IO)

    /** Work that must outlive a service or a module instance (a fresh job after a stop). */
    internal val background: CoroutineScope get() = scope
    private val lock = Any()
    @Volatile private var opening: Deferred<UploadEngine>? = null
    @Volatile private var opened: UploadEngine? = null
    @Volatile private var lastFailure: OpenFailure? = null
    private var visibility: AppVisibility? = null
    private var application: Application? = null
    private var network: NetworkMonitor? = null
    private var seq = 0L
    private var state: AppState? = null

    /** Runs on the opening thread before the engine opens (tests hold it there). */
    @Volatile internal var beforeOpenForTests: (() -> Unit)? = null

    /**
     * Starts opening the engine unless it is open or opening. Non-blocking,
     * any thread. A failure other than a damaged queue (a full disk, say)
     * is tried again by the next call; a damaged queue waits for
     * [setAsideQueue].
     */
    fun start(context: Context): Deferred<UploadEngine> {
        opening?.let { if (!retryable(it)) return it }
        synchronized(lock) {
            opening?.let { if (!retryable(it)) return it }
            val app = context.applicationContext
            watchVisibility(app)
            return scope.async { open(app) }.also { opening = it }
        }
    }

    private fun retryable(d: Deferred<UploadEngine>): Boolean {
        if (!d.isCompleted) return false
        val failure = lastFailure ?: return false
        return failure.code != DATABASE_CORRUPT
    }

    /** The engine, once open; throws [OpenFailure] when it cannot be. */
    suspend fun engine(context: Context): UploadEngine = start(context).await()

    /** Whether the app shows an activity now (after [start]). */
    val visible: Boolean get() = visibility?.visible ?: false

    /** The queue database's path (tests and diagnostics). */
    fun databaseFile(context: Context): File = File(File(context.applicationContext.noBackupFilesDir, "s3bgu"), "queue.db")

    private fun watchVisibility(app: Context) {
        if (visibility != null) return
        val application = app as? Application ?: return
        val tracker = AppVisibility(AppVisibility.guess()) { now -> report(if (now) AppState.FOREGROUND else AppState.BACKGROUND) }
        application.registerActivityLifecycleCallbacks(tracker)
        visibility = tracker
        this.application = application
        report(if (tracker.visible) AppState.FOREGROUND else AppState.BACKGROUND)
    }

    /** A transition, numbered in the order seen; sent now if the engine is open, else at open. */
    private fun report(now: AppState) {
        val (engine, n) = synchronized(lock) {
            seq++
            state = now
            opened to seq
        }
        engine?.let { e -> runCatching { e.setAppState(now, n.toULong()) } }
    }

    private fun open(app: Context): UploadEngine {
        beforeOpenForTests?.invoke()
        lastFailure = null
        try {
            return openOnce(app)
        } catch (e: OpenFailure) {
            lastFailure = e
            throw e
        }
    }

    private fun openOnce(app: Context): UploadEngine {
        val engine = try {
            // Before the first handshake: the engine carries no root store
            // of its own on Android. Only a trust that accepts any
            // certificate is refused; the engine then trusts
            // extraRootCertificatesPem alone.
            try {
                installPlatformTrust(AndroidTrust.fromPlatform())
            } catch (e: UploaderException) {
                Log.e(TAG, "platform trust refused: ${e.errorCode()}")
            }
            val db = databaseFile(app)
            db.parentFile?.mkdirs()
            UploadEngine.openJson(db.path, false)
        } catch (e: JsException.Rejected) {
            throw OpenFailure(e.code, e.detail).also { Log.e(TAG, "the upload queue cannot be opened: ${e.code}") }
        } catch (e: UploaderException) {
            throw OpenFailure(e.errorCode(), e.errorDetail()).also { Log.e(TAG, "the upload queue cannot be opened: ${e.errorCode()}") }
        } catch (e: Throwable) {
            // No engine library for this ABI, JNA missing from the app, ...
            Log.e(TAG, "the upload engine cannot be loaded", e)
            throw OpenFailure("internal", "the upload engine could not be loaded (${e.javaClass.simpleName})")
        }
        try {
            // URIs in the queue wait for the opener, and paths under the
            // app's directories for their roots: register both right away.
            engine.setFileOpener(ContentFileOpener(app.contentResolver))
            engine.setFileRoots(roots(app))
            val (current, n) = synchronized(lock) {
                opened = engine
                val s = state ?: AppState.BACKGROUND
                if (state == null) {
                    seq++
                    state = s
                }
                s to seq
            }
            engine.setAppState(current, n.toULong())
            synchronized(lock) { network = NetworkMonitor.start(app, engine) }
        } catch (e: Throwable) {
            // The queue opened but could not be wired (or the network
            // callback was refused): closed, and tried again by a later call.
            synchronized(lock) {
                opened = null
                network?.stop()
                network = null
            }
            runCatching { engine.close() }
            throw if (e is UploaderException) OpenFailure(e.errorCode(), e.errorDetail()) else OpenFailure("internal", "the upload engine could not be set up (${e.javaClass.simpleName})")
        }
        Log.i(TAG, "engine opened")
        return engine
    }

    /** The app's directories under the names the engine stores paths by. */
    private fun roots(app: Context): List<FileRoot> {
        val list = mutableListOf(FileRoot("files", app.filesDir.path), FileRoot("cache", app.cacheDir.path))
        runCatching { app.getExternalFilesDir(null) }.getOrNull()?.let { list.add(FileRoot("externalFiles", it.path)) }
        return list
    }

    /**
     * Sets a damaged queue aside (kept next to it as
     * `queue.db.corrupt-<unix ms>` for inspection) and opens an empty one;
     * answers the kept file's path. Only while the queue could not be opened
     * as damaged: otherwise [OpenFailure] with [notDamagedCode].
     */
    suspend fun setAsideQueue(context: Context, notDamagedCode: String): String {
        val current = start(context)
        val failure = try {
            current.await()
            null
        } catch (e: OpenFailure) {
            e
        }
        if (failure?.code != DATABASE_CORRUPT) {
            throw OpenFailure(notDamagedCode, "the upload queue is not damaged: nothing to set aside")
        }
        val kept = synchronized(lock) {
            if (opening !== current) null else setAsideDatabase(databaseFile(context).path).also { opening = null }
        } ?: throw OpenFailure(notDamagedCode, "the upload queue was set aside already")
        Log.w(TAG, "the damaged upload queue was set aside")
        // The file is moved: its path is the answer even if the fresh queue
        // does not open now (the next call tries again).
        try {
            engine(context)
        } catch (e: OpenFailure) {
            Log.w(TAG, "the fresh queue is not open yet: ${e.code}")
        }
        return kept
    }

    /**
     * Closes the engine (tests: each gets a fresh application and queue).
     * The engine is shut down before it is forgotten, so that a call still
     * on its way gets the old engine rather than opening a new one early;
     * [beforeOpenForTests] is kept (tests clear it themselves). An open
     * still under way is waited for first: left running, it would hold the
     * queue file and register itself after the reset.
     */
    internal fun resetForTests() {
        val pending = synchronized(lock) { opening }
        val engine = runBlocking { runCatching { pending?.await() }.getOrNull() } ?: synchronized(lock) { opened }
        engine?.let { e -> runBlocking { runCatching { e.shutdown() } } }
        synchronized(lock) {
            network?.stop()
            network = null
            visibility?.let { application?.unregisterActivityLifecycleCallbacks(it) }
            visibility = null
            application = null
            seq = 0
            state = null
            opened = null
            opening = null
            lastFailure = null
        }
        engine?.close()
    }
}
