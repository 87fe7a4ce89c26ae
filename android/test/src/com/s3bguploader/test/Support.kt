package com.s3bguploader.test

import com.facebook.react.bridge.JavaOnlyArray
import com.facebook.react.bridge.JavaOnlyMap
import com.facebook.react.bridge.Promise
import com.facebook.react.bridge.ReadableArray
import com.facebook.react.bridge.ReadableMap
import com.facebook.react.bridge.WritableMap
import com.s3bguploader.JsonBridge
import com.s3bguploader.S3BgUploaderRuntime
import android.net.ConnectivityManager
import android.net.NetworkCapabilities
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.shadows.ShadowNetworkCapabilities
import java.io.File
import kotlinx.coroutines.runBlocking
import java.nio.file.Files
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import kotlin.random.Random

const val MIB = 1024 * 1024

/** `s3bgu serve`: the reference backend with its embedded signature-checking store, on loopback. */
object Backend {
    val url: String
    val storeDir: File = Files.createTempDirectory("s3bgu-android-store").toFile()

    init {
        val cli = System.getProperty("s3bgu.cli")?.takeIf { it.isNotEmpty() } ?: error("-Ds3bgu.cli is not set")
        val p = ProcessBuilder(
            cli, "serve", "--listen", "127.0.0.1:0",
            "--store", storeDir.path, "--part-size", (5 * MIB).toString(),
        ).redirectError(ProcessBuilder.Redirect.DISCARD).start()
        // The server goes with the test JVM, and its store with it.
        Runtime.getRuntime().addShutdownHook(
            Thread {
                p.destroyForcibly().waitFor(10, TimeUnit.SECONDS)
                storeDir.deleteRecursively()
            },
        )
        val first = p.inputStream.bufferedReader().readLine() ?: error("s3bgu serve exited: ${p.waitFor()}")
        check(first.startsWith("listening on ")) { "unexpected first line: $first" }
        url = first.removePrefix("listening on ").trim()
    }

    fun objectBytes(key: String): ByteArray = File(storeDir, "uploads/$key").readBytes()

    fun configJson(extra: String = ""): String =
        """{"startUploadUrl":"$url/startUpload","uploadUrlsUrl":"$url/getUploadUrls",""" +
            """"completeUrl":"$url/complete","maxPartsInFlight":3,""" +
            """"retry":{"maxAttempts":2,"baseDelayMs":10,"maxDelayMs":50}$extra}"""
}

/** A promise that records how it settled. */
class TestPromise : Promise {
    private val latch = CountDownLatch(1)
    @Volatile var value: Any? = null
    @Volatile var code: String? = null
    @Volatile var message: String? = null
    @Volatile var settledTimes = 0

    private fun settle(c: String?, m: String?, v: Any?) {
        synchronized(this) {
            settledTimes++
            if (settledTimes > 1) return
            code = c
            message = m
            value = v
        }
        latch.countDown()
    }

    /** Waits (bounded, so a hang fails instead of blocking the suite). */
    fun await(): TestPromise {
        check(latch.await(120, TimeUnit.SECONDS)) { "the promise never settled" }
        return this
    }

    fun resolved(): Any? {
        await()
        check(code == null) { "rejected: $code $message" }
        return value
    }

    fun rejection(): Pair<String, String> {
        await()
        check(code != null) { "resolved with $value" }
        return code!! to (message ?: "")
    }

    override fun resolve(value: Any?) = settle(null, null, value)
    override fun reject(code: String?, message: String?) = settle(code ?: "EUNSPECIFIED", message, null)
    override fun reject(code: String?, throwable: Throwable?) = settle(code ?: "EUNSPECIFIED", throwable?.message, null)
    override fun reject(code: String?, message: String?, throwable: Throwable?) = settle(code ?: "EUNSPECIFIED", message, null)
    override fun reject(throwable: Throwable) = settle("EUNSPECIFIED", throwable.message, null)
    override fun reject(throwable: Throwable, userInfo: WritableMap) = settle("EUNSPECIFIED", throwable.message, null)
    override fun reject(code: String?, userInfo: WritableMap) = settle(code ?: "EUNSPECIFIED", null, null)
    override fun reject(code: String?, throwable: Throwable?, userInfo: WritableMap) = settle(code ?: "EUNSPECIFIED", throwable?.message, null)
    override fun reject(code: String?, message: String?, userInfo: WritableMap) = settle(code ?: "EUNSPECIFIED", message, null)
    override fun reject(code: String?, message: String?, throwable: Throwable?, userInfo: WritableMap?) = settle(code ?: "EUNSPECIFIED", message, null)
    @Deprecated("React Native's own deprecation")
    override fun reject(message: String) = settle("EUNSPECIFIED", message, null)
}

/** Runs [block] until it returns non-null; fails after a generous bound (never a timing assertion). */
fun <T : Any> eventually(what: String, block: () -> T?): T {
    val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120)
    while (System.nanoTime() < deadline) {
        block()?.let { return it }
        Thread.sleep(20)
    }
    throw AssertionError("timed out waiting for $what")
}

fun randomFile(dir: File, name: String, size: Int): File =
    File(dir, name).also { it.parentFile.mkdirs(); it.writeBytes(Random(size + name.hashCode()).nextBytes(size)) }

fun ReadableMap.str(key: String): String? = if (hasKey(key) && !isNull(key)) getString(key) else null
fun ReadableMap.num(key: String): Double = getDouble(key)
fun ReadableArray.maps(): List<ReadableMap> = (0 until size()).map { getMap(it)!! }

/** Test defaults shared by every suite: maps without native code, one fresh engine per test. */
object TestSetup {
    fun before() {
        JsonBridge.newMap = { JavaOnlyMap() }
        JsonBridge.newArray = { JavaOnlyArray() }
        S3BgUploaderRuntime.beforeOpenForTests = null
        S3BgUploaderRuntime.resetForTests()
        TestJobScheduler.reset()
        Screen.reset()
        // The process starts off screen: tests bring an activity up when
        // they need the app visible (the runtime's first guess reads this).
        val am = RuntimeEnvironment.getApplication().getSystemService(android.app.ActivityManager::class.java)!!
        shadowOf(am).setProcesses(
            listOf(
                android.app.ActivityManager.RunningAppProcessInfo().apply {
                    pid = android.os.Process.myPid()
                    processName = RuntimeEnvironment.getApplication().packageName
                    importance = 400 // IMPORTANCE_CACHED (IMPORTANCE_BACKGROUND before API 26)
                },
            ),
        )
        // The default network is Wi-Fi with validated internet access (the engine reads it on open).
        val app = RuntimeEnvironment.getApplication()
        val cm = app.getSystemService(ConnectivityManager::class.java)!!
        val wifi = ShadowNetworkCapabilities.newInstance()
        shadowOf(wifi).addTransportType(NetworkCapabilities.TRANSPORT_WIFI)
        shadowOf(wifi).addCapability(NetworkCapabilities.NET_CAPABILITY_INTERNET)
        shadowOf(wifi).addCapability(NetworkCapabilities.NET_CAPABILITY_VALIDATED)
        shadowOf(wifi).addCapability(NetworkCapabilities.NET_CAPABILITY_NOT_METERED)
        shadowOf(cm).setNetworkCapabilities(cm.activeNetwork, wifi)
    }

    fun after() {
        S3BgUploaderRuntime.resetForTests()
    }
}

/**
 * A pass-through to [Backend] whose calls wait at a gate until the test
 * opens it: keeps an upload (and so a job) running for as long as a test
 * needs, without sleeping.
 */
class GatedBackend : AutoCloseable {
    private val gate = CountDownLatch(1)
    @Volatile var waiting = 0
        private set

    /** When set, the next startUpload is answered 503 with this Retry-After (then cleared). */
    @Volatile var retryAfterOnce: String? = null
    private val server = com.sun.net.httpserver.HttpServer.create(java.net.InetSocketAddress("127.0.0.1", 0), 0)
    val url: String

    init {
        server.executor = java.util.concurrent.Executors.newCachedThreadPool()
        server.createContext("/") { ex ->
            try {
                waiting++
                gate.await(120, TimeUnit.SECONDS)
                val retry = retryAfterOnce
                if (retry != null && ex.requestURI.path.endsWith("/startUpload")) {
                    retryAfterOnce = null
                    ex.responseHeaders.add("Retry-After", retry)
                    ex.sendResponseHeaders(503, -1)
                    return@createContext
                }
                val conn = java.net.URL(Backend.url + ex.requestURI.toString()).openConnection() as java.net.HttpURLConnection
                conn.requestMethod = ex.requestMethod
                ex.requestHeaders.forEach { (k, v) -> if (k != null && !k.equals("Host", true) && !k.equals("Content-Length", true)) v.forEach { conn.addRequestProperty(k, it) } }
                val body = ex.requestBody.readBytes()
                if (body.isNotEmpty()) {
                    conn.doOutput = true
                    conn.outputStream.use { it.write(body) }
                }
                val code = conn.responseCode
                val answer = (if (code < 400) conn.inputStream else conn.errorStream)?.readBytes() ?: ByteArray(0)
                conn.headerFields.forEach { (k, v) -> if (k != null && !k.equals("Transfer-Encoding", true) && !k.equals("Content-Length", true)) v.forEach { ex.responseHeaders.add(k, it) } }
                ex.sendResponseHeaders(code, if (answer.isEmpty()) -1 else answer.size.toLong())
                if (answer.isNotEmpty()) ex.responseBody.use { it.write(answer) }
            } finally {
                ex.close()
            }
        }
        server.start()
        url = "http://127.0.0.1:${server.address.port}"
    }

    fun open() = gate.countDown()

    fun configJson(extra: String = ""): String = Backend.configJson(extra).replace(Backend.url, url)

    override fun close() {
        gate.countDown()
        server.stop(0)
    }
}

/**
 * The job scheduler as the OS answers it (Robolectric's keeps jobs but has
 * no service behind `canRunUserInitiatedJobs`): whether the person allows
 * long-running jobs, and a refusal of user-initiated jobs as the system
 * gives one when the app is not visible. Our code runs unchanged on it.
 */
@org.robolectric.annotation.Implements(className = "android.app.JobSchedulerImpl", isInAndroidSdk = false)
class TestJobScheduler : org.robolectric.shadows.ShadowJobScheduler.ShadowJobSchedulerImpl() {
    companion object {
        @Volatile var allowUserInitiated = true
        @Volatile var refuseUserInitiated = false

        fun reset() {
            allowUserInitiated = true
            refuseUserInitiated = false
        }
    }

    @org.robolectric.annotation.Implementation(minSdk = 34)
    protected fun canRunUserInitiatedJobs(): Boolean = allowUserInitiated

    @org.robolectric.annotation.Implementation
    override fun schedule(job: android.app.job.JobInfo): Int {
        if (refuseUserInitiated && android.os.Build.VERSION.SDK_INT >= 34 && job.isUserInitiated) {
            return android.app.job.JobScheduler.RESULT_FAILURE
        }
        return super.schedule(job)
    }
}

/** The app's screen, through real activity callbacks (what the runtime watches). */
object Screen {
    private var shown: org.robolectric.android.controller.ActivityController<android.app.Activity>? = null

    /**
     * An activity comes to the front (the app is visible). The runtime
     * watches from before it starts (a runtime reset since forgets it).
     */
    fun show() {
        S3BgUploaderRuntime.start(RuntimeEnvironment.getApplication())
        shown?.stop()
        // Created and started: what the runtime watches (making it visible needs
        // window services some Robolectric levels lack).
        shown = org.robolectric.Robolectric.buildActivity(android.app.Activity::class.java).create().start()
    }

    /** The app leaves the screen (its activity stops). */
    fun leave() {
        if (shown == null) show()
        shown!!.stop()
        shown = null
    }

    fun reset() {
        shown = null
    }
}

/** The process's engine (opened in the background by the runtime), waited for. */
fun engineOf(app: android.content.Context): com.s3bguploader.core.UploadEngine = runBlocking { S3BgUploaderRuntime.engine(app) }

/** Runs what was posted to the main thread (Robolectric's paused looper). */
fun idleMain() = shadowOf(android.os.Looper.getMainLooper()).idle()

/** A service declaration's foreground types (a public field Kotlin sees only through its read-only getter). */
fun android.content.pm.ServiceInfo.withForegroundType(type: Int): android.content.pm.ServiceInfo =
    apply { if (android.os.Build.VERSION.SDK_INT >= 29) org.robolectric.util.ReflectionHelpers.setField(this, "mForegroundServiceType", type) }
