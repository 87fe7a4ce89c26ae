package com.s3bguploader

import android.util.Log
import com.facebook.react.bridge.Promise
import com.facebook.react.bridge.ReactApplicationContext
import com.facebook.react.bridge.ReadableMap
import com.facebook.react.module.annotations.ReactModule
import com.s3bguploader.core.JsEventObserver
import com.s3bguploader.core.JsException
import com.s3bguploader.core.Subscription
import com.s3bguploader.core.UploadEngine
import com.s3bguploader.core.UploaderException
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.async
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.launch
import java.io.File

/**
 * The TurboModule: a thin adapter from the codegen spec to the engine's JSON
 * calls. Nothing here blocks React Native's threads: the engine opens in
 * the background (S3BgUploaderRuntime) and calls run one at a time, in the
 * order JavaScript made them (a call not awaited still comes before the
 * next), each settling its promise exactly once. Failures reject with the
 * engine's stable code, including a queue that could not be opened, which
 * `setAsideQueue` can replace with an empty one.
 */
@ReactModule(name = NativeS3BgUploaderSpec.NAME)
class S3BgUploaderModule(context: ReactApplicationContext) : NativeS3BgUploaderSpec(context) {
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    private val calls = Channel<suspend () -> Unit>(Channel.UNLIMITED)
    private val lock = Any()
    private var subscription: Subscription? = null
    private var subscribedTo: UploadEngine? = null
    @Volatile private var invalidated = false

    /** Where events go: the spec's emitters. */
    @Volatile internal var eventSink: (String, ReadableMap) -> Unit = { name, map ->
        when (name) {
            "onProgress" -> emitOnProgress(map)
            "onStateChange" -> emitOnStateChange(map)
        }
    }

    init {
        S3BgUploaderRuntime.start(context)
        scope.launch {
            for (call in calls) call()
        }
    }

    override fun initialize() {
        super.initialize()
        scope.launch {
            val engine = try {
                S3BgUploaderRuntime.engine(reactApplicationContext)
            } catch (e: S3BgUploaderRuntime.OpenFailure) {
                // Every call rejects with it; JavaScript decides.
                return@launch
            }
            attach(engine)
            // Work left from an earlier run continues in a job.
            runCatching { UploadJobs.ensureScheduled(reactApplicationContext, engine) }
        }
    }

    /** Events flow while the module lives; after a reload JS asks getUploads for the current state. */
    private fun attach(engine: UploadEngine) {
        synchronized(lock) {
            if (invalidated || subscribedTo === engine) return
            subscription?.close()
            subscription = try {
                engine.subscribeJson(object : JsEventObserver {
                    override fun onEvent(name: String, json: String) {
                        try {
                            eventSink(name, JsonBridge.toMap(json))
                        } catch (e: Exception) {
                            // No listener yet, or the instance is going away.
                        }
                    }
                })
            } catch (e: UploaderException) {
                Log.w(S3BgUploaderRuntime.TAG, "no events: ${e.errorCode()}")
                null
            }
            subscribedTo = engine
        }
    }

    override fun invalidate() {
        synchronized(lock) {
            invalidated = true
            subscription?.close()
            subscription = null
        }
        // Calls already made still run and settle; the queue then ends.
        calls.close()
        super.invalidate()
    }

    /** Queues [block] behind the calls made before it; settles [promise] once, whatever happens. */
    private fun serial(promise: Promise, block: suspend () -> Any?) {
        val queued = calls.trySend {
            try {
                promise.resolve(block())
            } catch (e: S3BgUploaderRuntime.OpenFailure) {
                promise.reject(e.code, e.detail)
            } catch (e: JsException.Rejected) {
                promise.reject(e.code, e.detail)
            } catch (e: UploaderException) {
                // Outside the JSON calls: the engine's code all the same.
                promise.reject(e.errorCode(), e.errorDetail())
            } catch (e: CancellationException) {
                promise.reject("internal", "the native module was invalidated")
                throw e
            } catch (e: Throwable) {
                promise.reject("internal", "the native module failed: ${e.javaClass.simpleName}")
            }
        }
        if (queued.isFailure) promise.reject("internal", "the native module was invalidated")
    }

    /** [serial] with the engine (a failed open rejects with its code). */
    private fun settle(promise: Promise, block: suspend (UploadEngine) -> Any?) = serial(promise) {
        val engine = S3BgUploaderRuntime.engine(reactApplicationContext)
        attach(engine)
        block(engine)
    }

    override fun setConfig(configJson: String, promise: Promise) {
        val visible = S3BgUploaderRuntime.visible
        settle(promise) { engine ->
            val before = engine.config()?.networkPolicy
            engine.setConfigJson(configJson)
            val ctx = reactApplicationContext
            // New headers may release auth-paused uploads; a new policy
            // needs the job's constraint changed.
            runCatching {
                if (before != null && before != engine.config()?.networkPolicy) {
                    UploadJobs.policyChanged(ctx, engine, visible)
                } else {
                    UploadJobs.ensureScheduled(ctx, engine)
                }
            }
            null
        }
    }

    override fun uploadFile(path: String, transferId: String, fileName: String?, userParamsJson: String, promise: Promise) {
        // The person's action, as it is now: the job is chosen before the
        // file is hashed (seconds for a big video), while the app is
        // still visible.
        val visible = S3BgUploaderRuntime.visible
        settle(promise) { engine ->
            val ctx = reactApplicationContext
            if (path.startsWith("content:")) {
                ContentFileOpener.takePersistablePermission(ctx.contentResolver, path)
            }
            coroutineScope {
                // Undispatched: the engine counts the add before the job
                // is scheduled, so a job that starts at once waits for it.
                val added = async(start = CoroutineStart.UNDISPATCHED) {
                    engine.uploadFileJson(path, transferId, fileName, userParamsJson)
                }
                runCatching { UploadJobs.forUserAction(ctx, engine, visible, knownSize(path)) }
                    .onFailure { Log.w(S3BgUploaderRuntime.TAG, "no job scheduled: ${it.javaClass.simpleName}") }
                JsonBridge.toMap(added.await())
            }
        }
    }

    private fun knownSize(path: String): Long =
        if (path.startsWith("/")) runCatching { File(path).length() }.getOrDefault(0L) else 0L

    override fun pause(uploadId: Double?, transferId: String?, promise: Promise) = settle(promise) { engine ->
        JsonBridge.toArray(engine.pauseJson(uploadId, transferId))
    }

    override fun resume(uploadId: Double?, transferId: String?, promise: Promise) {
        val visible = S3BgUploaderRuntime.visible
        settle(promise) { engine ->
            val json = engine.resumeJson(uploadId, transferId)
            val changed = JsonBridge.toArray(json)
            if (changed.size() > 0) {
                runCatching { UploadJobs.forUserAction(reactApplicationContext, engine, visible) }
            }
            changed
        }
    }

    override fun cancel(uploadId: Double?, transferId: String?, promise: Promise) = settle(promise) { engine ->
        val json = engine.cancelJson(uploadId, transferId)
        releaseGrants(engine, contentUris(json))
        JsonBridge.toArray(json)
    }

    override fun forget(uploadId: Double?, transferId: String?, promise: Promise) = settle(promise) { engine ->
        val candidates = contentUris(engine.uploadsJson(uploadId, transferId))
        val forgotten = engine.forgetJson(uploadId, transferId)
        releaseGrants(engine, candidates)
        forgotten
    }

    override fun getUploads(uploadId: Double?, transferId: String?, promise: Promise) = settle(promise) { engine ->
        JsonBridge.toArray(engine.uploadsJson(uploadId, transferId))
    }

    override fun getSummary(transferId: String?, promise: Promise) = settle(promise) { engine ->
        JsonBridge.toMap(engine.summaryJson(transferId))
    }

    /**
     * After `database_corrupt`: sets the damaged queue aside (kept for
     * inspection) and opens an empty one; resolves with the kept file's path.
     */
    override fun setAsideQueue(promise: Promise) = serial(promise) {
        val kept = S3BgUploaderRuntime.setAsideQueue(reactApplicationContext, NOT_DAMAGED_CODE)
        runCatching { attach(S3BgUploaderRuntime.engine(reactApplicationContext)) }
        kept
    }

    /** content:// URIs among the uploads of a JSON answer. */
    private fun contentUris(json: String): Set<String> =
        JsonBridge.toArray(json).let { a ->
            (0 until a.size()).mapNotNull { i -> a.getMap(i)?.takeIf { it.hasKey("path") && !it.isNull("path") }?.getString("path") }
                .filter { it.startsWith("content:") }
                .toSet()
        }

    /**
     * Gives back the persistable read grants of URIs that no unfinished
     * upload needs any more (an app holds at most a few hundred).
     */
    private suspend fun releaseGrants(engine: UploadEngine, uris: Set<String>) {
        if (uris.isEmpty()) return
        val all = JsonBridge.toArray(engine.uploadsJson(null, null))
        val stillNeeded = (0 until all.size()).mapNotNull { all.getMap(it) }
            .filter { it.getString("state") !in FINISHED_STATES }
            .mapNotNull { if (it.hasKey("path") && !it.isNull("path")) it.getString("path") else null }
            .toSet()
        val resolver = reactApplicationContext.contentResolver
        for (uri in uris - stillNeeded) ContentFileOpener.releasePersistablePermission(resolver, uri)
    }

    private companion object {
        // A failed upload may be resumed: it keeps its grant.
        val FINISHED_STATES = setOf("COMPLETED", "CANCELLED")
        const val NOT_DAMAGED_CODE = "invalid_argument"
    }
}
