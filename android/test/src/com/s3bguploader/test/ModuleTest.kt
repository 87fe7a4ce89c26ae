package com.s3bguploader.test

import android.app.Application
import android.app.job.JobInfo
import android.app.job.JobScheduler
import org.robolectric.RuntimeEnvironment
import com.facebook.react.bridge.JavaOnlyMap
import com.facebook.react.bridge.ReadableArray
import com.facebook.react.bridge.ReadableMap
import com.s3bguploader.NativeS3BgUploaderSpec
import com.s3bguploader.S3BgUploaderModule
import com.s3bguploader.S3BgUploaderPackage
import com.s3bguploader.S3BgUploaderRuntime
import com.s3bguploader.UploadJobService
import com.s3bguploader.UploadJobs
import kotlinx.coroutines.runBlocking
import org.junit.After
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.annotation.Config
import java.io.File
import java.util.Collections

/** The spec's object shapes (js/src/NativeS3BgUploader.ts), field for field. */
val NATIVE_UPLOAD_KEYS = setOf(
    "id", "transferId", "path", "fileName", "fileHash", "size", "state", "key", "uploadId", "partSize",
    "partsTotal", "partsDone", "uploadedBytes", "error", "createdAtMs", "updatedAtMs",
)
val NATIVE_SUMMARY_KEYS = setOf(
    "uploads", "pending", "initialized", "running", "paused", "completed", "failed", "cancelled",
    "totalBytes", "uploadedBytes", "transfers", "completedTransfers",
)
val NATIVE_PROGRESS_KEYS = setOf("id", "transferId", "uploadedBytes", "totalBytes", "partsDone", "partsTotal")

fun ReadableMap.keys(): Set<String> = toHashMap().keys

@RunWith(RobolectricTestRunner::class)
class ModuleTest {
    private lateinit var app: Application
    private lateinit var module: S3BgUploaderModule
    private val events: MutableList<Pair<String, ReadableMap>> = Collections.synchronizedList(ArrayList())

    @Before
    fun setUp() {
        TestSetup.before()
        app = RuntimeEnvironment.getApplication()
        module = S3BgUploaderModule(TestReactContext(app))
        module.eventSink = { name, map -> events.add(name to map) }
        module.appVisible = { true }
        module.initialize()
    }

    @After
    fun tearDown() {
        module.invalidate()
        TestSetup.after()
    }

    private fun call(block: (TestPromise) -> Unit): TestPromise = TestPromise().also(block)

    private fun uploadsOf(id: Double): ReadableMap =
        (call { module.getUploads(id, null, it) }.resolved() as ReadableArray).maps().single()

    private fun settled(id: Double): ReadableMap = eventually("upload $id to settle") {
        uploadsOf(id).takeIf { it.str("state") in setOf("COMPLETED", "FAILED", "CANCELLED") }
    }

    @Test
    fun packageRegistersTheTurboModule() {
        val pkg = S3BgUploaderPackage()
        val info = pkg.getReactModuleInfoProvider().getReactModuleInfos()[NativeS3BgUploaderSpec.NAME]!!
        assertEquals("S3BgUploader", info.name)
        assertTrue(info.isTurboModule)
        assertEquals(S3BgUploaderModule::class.java.name, info.className)
        assertTrue(pkg.getModule("S3BgUploader", TestReactContext(app)) is S3BgUploaderModule)
        assertNull(pkg.getModule("Other", TestReactContext(app)))
    }

    @Test
    fun methodsResolveWithTheSpecShapesAndRejectWithEngineCodes() {
        // Before any configuration: uploadFile is refused with the engine's code.
        val f = randomFile(app.cacheDir, "clip.bin", 5 * MIB + 321)
        val unconfigured = call { module.uploadFile(f.path, "album", null, "{}", it) }.rejection()
        assertEquals("invalid_config", unconfigured.first)

        val bad = call { module.setConfig("""{"startUploadUrl":"nope"}""", it) }.rejection()
        assertEquals("invalid_config", bad.first)
        assertTrue(bad.second, bad.second.isNotEmpty())
        assertNull(call { module.setConfig(Backend.configJson(), it) }.resolved())

        val added = call { module.uploadFile(f.path, "album", "clip.mp4", """{"album":"x"}""", it) }.resolved() as ReadableMap
        assertEquals(NATIVE_UPLOAD_KEYS, added.keys())
        assertEquals("clip.mp4", added.str("fileName"))
        assertEquals("album", added.str("transferId"))
        assertEquals(f.length().toDouble(), added.num("size"), 0.0)
        val id = added.num("id")

        val done = settled(id)
        assertEquals("COMPLETED", done.str("state"))
        assertTrue(done.isNull("error"))
        assertArrayEquals(f.readBytes(), Backend.objectBytes(done.str("key")!!))

        val summary = call { module.getSummary("album", it) }.resolved() as ReadableMap
        assertEquals(NATIVE_SUMMARY_KEYS, summary.keys())
        assertEquals(1.0, summary.num("completed"), 0.0)
        assertEquals(f.length().toDouble(), summary.num("uploadedBytes"), 0.0)

        assertEquals("invalid_argument", call { module.pause(1.5, null, it) }.rejection().first)
        assertEquals(0, (call { module.pause(null, "album", it) }.resolved() as ReadableArray).size())
        assertEquals(0, (call { module.resume(id, null, it) }.resolved() as ReadableArray).size())
        assertEquals(0, (call { module.cancel(id, null, it) }.resolved() as ReadableArray).size())
        assertEquals(1.0, call { module.forget(id, null, it) }.resolved() as Double, 0.0)
        assertEquals(0, (call { module.getUploads(null, null, it) }.resolved() as ReadableArray).size())
    }

    @Test
    fun eventsArriveAsMapsWhileTheModuleLives() {
        assertNull(call { module.setConfig(Backend.configJson(), it) }.resolved())
        val f = randomFile(app.cacheDir, "events.bin", 6 * MIB)
        val id = (call { module.uploadFile(f.path, "ev", null, "{}", it) }.resolved() as ReadableMap).num("id")
        assertEquals("COMPLETED", settled(id).str("state"))
        val seen = eventually("the COMPLETED event") {
            synchronized(events) { events.toList() }.takeIf { list ->
                list.any { it.first == "onStateChange" && it.second.str("state") == "COMPLETED" }
            }
        }
        val states = seen.filter { it.first == "onStateChange" }.map { it.second }
        assertTrue(states.all { it is JavaOnlyMap && it.keys() == NATIVE_UPLOAD_KEYS })
        assertEquals("PENDING", states.first { it.num("id") == id }.str("state"))
        val progress = seen.filter { it.first == "onProgress" }.map { it.second }
        assertTrue("no progress event", progress.isNotEmpty())
        assertTrue(progress.all { it.keys() == NATIVE_PROGRESS_KEYS })
        assertTrue(seen.all { it.first == "onStateChange" || it.first == "onProgress" })

        // Invalidated (reload, teardown): no more events from this module.
        module.invalidate()
        val before = events.size
        val engine = S3BgUploaderRuntime.engine(app)
        val g = randomFile(app.cacheDir, "after.bin", 1000)
        runBlocking { engine.uploadFileJson(g.path, "ev", null, "{}") }
        eventually("the second upload") {
            runBlocking { engine.summaryJson("ev") }.takeIf { it.contains("\"completed\":2") }
        }
        assertEquals(before, events.size)
        module = S3BgUploaderModule(TestReactContext(app)).also { it.eventSink = { _, _ -> } }
        module.initialize()
    }

    @Test
    fun uploadFileSchedulesAUserInitiatedJobWithThePolicyAndEstimate() {
        assertNull(call { module.setConfig(Backend.configJson(""","network":"unmetered""""), it) }.resolved())
        // On a metered network an unmetered-only upload waits, so the job is
        // scheduled with work left whatever the machine's speed.
        S3BgUploaderRuntime.engine(app).setNetworkState(true, true)
        val f = randomFile(app.cacheDir, "job.bin", 7 * MIB + 5)
        call { module.uploadFile(f.path, "job", null, "{}", it) }.resolved()
        val scheduler = app.getSystemService(JobScheduler::class.java)!!
        val job: JobInfo = eventually("the job") { scheduler.getPendingJob(UploadJobs.JOB_ID) }
        // User-initiated from API 34; a regular, persisted job below.
        assertEquals("user-initiated", hasUserInitiatedJobs, job.userInitiated)
        assertEquals(JobInfo.NETWORK_TYPE_UNMETERED, @Suppress("DEPRECATION") job.networkType)
        assertUploadEstimate(f.length(), job)
        assertEquals(UploadJobService::class.java.name, job.service.className)
        assertEquals("a user-initiated job is not persisted", !hasUserInitiatedJobs, job.isPersisted)
    }
}
